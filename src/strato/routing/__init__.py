"""Routing: pick a deployment per request, retry it, fall back, and take failing ones out.

A model group is a provider like any other (`provider: group` in the config) that wraps the
providers of other configured models; the gateway does not know whether a name is a group.
"""
