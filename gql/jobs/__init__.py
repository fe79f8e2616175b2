"""Export jobs: the domain layer under the GraphQL schema."""
