// Every operation the panel sends. `graphql()` is generated from schema.graphql by
// GraphQL Code Generator (`npm run codegen`), so variables and results are typed.
import { graphql } from "./generated";

export const JobFields = graphql(`
  fragment JobFields on ExportJob {
    id
    kind
    status
    progress
    message
    error
    projectId
    gameId
    retryOf
    createdAt
    updatedAt
    downloadUrl
    queuePosition
    queuePositionIsLowerBound
    eta {
      startsAt
      completesAt
      completesAtLow
      completesAtHigh
      basis
    }
    output {
      durationSeconds
      width
      height
      frameRate
      sizeBytes
      posterUrl
    }
  }
`);

/** What starting (or retrying) an export answers: the new job, or what to fix. */
export const StartPayload = graphql(`
  fragment StartPayload on StartExportPayload {
    job {
      ...JobFields
    }
    userErrors {
      field
      message
      code
    }
  }
`);

export const AssetsQuery = graphql(`
  query Assets {
    projects {
      id
      name
    }
    games {
      id
      name
    }
  }
`);

export const JobsQuery = graphql(`
  query Jobs($first: Int!) {
    exportJobs(first: $first) {
      edges {
        node {
          ...JobFields
        }
      }
    }
  }
`);

/** Every change to any of the user's jobs: the list stays live through this alone.
 * `since` resumes after the last `changeCursor` received, missing nothing. */
export const JobChangesSubscription = graphql(`
  subscription JobChanges($since: String) {
    exportJobs(since: $since) {
      ...JobFields
      changeCursor
    }
  }
`);

export const StartFramingMutation = graphql(`
  mutation StartFraming($input: FramingExportInput!) {
    startExport: startFramingExport(input: $input) {
      ...StartPayload
    }
  }
`);

export const StartOverlayMutation = graphql(`
  mutation StartOverlay($input: OverlayExportInput!) {
    startExport: startOverlayExport(input: $input) {
      ...StartPayload
    }
  }
`);

export const StartAnnotateMutation = graphql(`
  mutation StartAnnotate($input: AnnotateExportInput!) {
    startExport: startAnnotateExport(input: $input) {
      ...StartPayload
    }
  }
`);

export const CancelMutation = graphql(`
  mutation Cancel($id: ID!) {
    cancelExport(id: $id) {
      job {
        ...JobFields
      }
      userErrors {
        field
        message
        code
      }
    }
  }
`);

export const RetryMutation = graphql(`
  mutation Retry($id: ID!) {
    retryExport(id: $id) {
      ...StartPayload
    }
  }
`);
