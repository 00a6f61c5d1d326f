"""Input and output guards: scanners that allow, flag, redact or block text on the request path."""
