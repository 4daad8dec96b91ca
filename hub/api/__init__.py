"""The HTTP layer: routes, middleware and the problem+json handler."""
