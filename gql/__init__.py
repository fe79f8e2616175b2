"""export-gql: a GraphQL API for video exports that run on RunPod serverless workers."""
