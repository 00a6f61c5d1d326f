"""The OpenAI wire format, in one place: request bodies (`wire.requests`) and response bodies
(`wire.responses`), each both ways. The gateway and the providers see core types only."""
