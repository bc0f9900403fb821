"""Who is asking: the request gate, accounts and tokens, the sign-in API, the users CLI, the keys."""
