"""The HTTP/WebSocket edge: authentication, rate limits and the GraphQL endpoint."""
