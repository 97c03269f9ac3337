"""The HTTP layer: requests and answers, the route table, negotiation, multipart, caching, CORS."""
