"""The GraphQL schema: types, inputs, limits and the assembled `strawberry.Schema`."""
