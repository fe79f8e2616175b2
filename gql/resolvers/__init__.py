"""Thin resolvers: check, call the job service, map the result to GraphQL types."""
