/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  fragment JobFields on ExportJob {\n    id\n    kind\n    status\n    progress\n    message\n    error\n    projectId\n    gameId\n    retryOf\n    createdAt\n    updatedAt\n    downloadUrl\n    queuePosition\n    queuePositionIsLowerBound\n    eta {\n      startsAt\n      completesAt\n      completesAtLow\n      completesAtHigh\n      basis\n    }\n    output {\n      durationSeconds\n      width\n      height\n      frameRate\n      sizeBytes\n      posterUrl\n    }\n  }\n": typeof types.JobFieldsFragmentDoc,
    "\n  fragment StartPayload on StartExportPayload {\n    job {\n      ...JobFields\n    }\n    userErrors {\n      field\n      message\n      code\n    }\n  }\n": typeof types.StartPayloadFragmentDoc,
    "\n  query Assets {\n    projects {\n      id\n      name\n    }\n    games {\n      id\n      name\n    }\n  }\n": typeof types.AssetsDocument,
    "\n  query Jobs($first: Int!) {\n    exportJobs(first: $first) {\n      edges {\n        node {\n          ...JobFields\n        }\n      }\n    }\n  }\n": typeof types.JobsDocument,
    "\n  subscription JobChanges($since: String) {\n    exportJobs(since: $since) {\n      ...JobFields\n      changeCursor\n    }\n  }\n": typeof types.JobChangesDocument,
    "\n  mutation StartFraming($input: FramingExportInput!) {\n    startExport: startFramingExport(input: $input) {\n      ...StartPayload\n    }\n  }\n": typeof types.StartFramingDocument,
    "\n  mutation StartOverlay($input: OverlayExportInput!) {\n    startExport: startOverlayExport(input: $input) {\n      ...StartPayload\n    }\n  }\n": typeof types.StartOverlayDocument,
    "\n  mutation StartAnnotate($input: AnnotateExportInput!) {\n    startExport: startAnnotateExport(input: $input) {\n      ...StartPayload\n    }\n  }\n": typeof types.StartAnnotateDocument,
    "\n  mutation Cancel($id: ID!) {\n    cancelExport(id: $id) {\n      job {\n        ...JobFields\n      }\n      userErrors {\n        field\n        message\n        code\n      }\n    }\n  }\n": typeof types.CancelDocument,
    "\n  mutation Retry($id: ID!) {\n    retryExport(id: $id) {\n      ...StartPayload\n    }\n  }\n": typeof types.RetryDocument,
};
const documents: Documents = {
    "\n  fragment JobFields on ExportJob {\n    id\n    kind\n    status\n    progress\n    message\n    error\n    projectId\n    gameId\n    retryOf\n    createdAt\n    updatedAt\n    downloadUrl\n    queuePosition\n    queuePositionIsLowerBound\n    eta {\n      startsAt\n      completesAt\n      completesAtLow\n      completesAtHigh\n      basis\n    }\n    output {\n      durationSeconds\n      width\n      height\n      frameRate\n      sizeBytes\n      posterUrl\n    }\n  }\n": types.JobFieldsFragmentDoc,
    "\n  fragment StartPayload on StartExportPayload {\n    job {\n      ...JobFields\n    }\n    userErrors {\n      field\n      message\n      code\n    }\n  }\n": types.StartPayloadFragmentDoc,
    "\n  query Assets {\n    projects {\n      id\n      name\n    }\n    games {\n      id\n      name\n    }\n  }\n": types.AssetsDocument,
    "\n  query Jobs($first: Int!) {\n    exportJobs(first: $first) {\n      edges {\n        node {\n          ...JobFields\n        }\n      }\n    }\n  }\n": types.JobsDocument,
    "\n  subscription JobChanges($since: String) {\n    exportJobs(since: $since) {\n      ...JobFields\n      changeCursor\n    }\n  }\n": types.JobChangesDocument,
    "\n  mutation StartFraming($input: FramingExportInput!) {\n    startExport: startFramingExport(input: $input) {\n      ...StartPayload\n    }\n  }\n": types.StartFramingDocument,
    "\n  mutation StartOverlay($input: OverlayExportInput!) {\n    startExport: startOverlayExport(input: $input) {\n      ...StartPayload\n    }\n  }\n": types.StartOverlayDocument,
    "\n  mutation StartAnnotate($input: AnnotateExportInput!) {\n    startExport: startAnnotateExport(input: $input) {\n      ...StartPayload\n    }\n  }\n": types.StartAnnotateDocument,
    "\n  mutation Cancel($id: ID!) {\n    cancelExport(id: $id) {\n      job {\n        ...JobFields\n      }\n      userErrors {\n        field\n        message\n        code\n      }\n    }\n  }\n": types.CancelDocument,
    "\n  mutation Retry($id: ID!) {\n    retryExport(id: $id) {\n      ...StartPayload\n    }\n  }\n": types.RetryDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment JobFields on ExportJob {\n    id\n    kind\n    status\n    progress\n    message\n    error\n    projectId\n    gameId\n    retryOf\n    createdAt\n    updatedAt\n    downloadUrl\n    queuePosition\n    queuePositionIsLowerBound\n    eta {\n      startsAt\n      completesAt\n      completesAtLow\n      completesAtHigh\n      basis\n    }\n    output {\n      durationSeconds\n      width\n      height\n      frameRate\n      sizeBytes\n      posterUrl\n    }\n  }\n"): (typeof documents)["\n  fragment JobFields on ExportJob {\n    id\n    kind\n    status\n    progress\n    message\n    error\n    projectId\n    gameId\n    retryOf\n    createdAt\n    updatedAt\n    downloadUrl\n    queuePosition\n    queuePositionIsLowerBound\n    eta {\n      startsAt\n      completesAt\n      completesAtLow\n      completesAtHigh\n      basis\n    }\n    output {\n      durationSeconds\n      width\n      height\n      frameRate\n      sizeBytes\n      posterUrl\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment StartPayload on StartExportPayload {\n    job {\n      ...JobFields\n    }\n    userErrors {\n      field\n      message\n      code\n    }\n  }\n"): (typeof documents)["\n  fragment StartPayload on StartExportPayload {\n    job {\n      ...JobFields\n    }\n    userErrors {\n      field\n      message\n      code\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Assets {\n    projects {\n      id\n      name\n    }\n    games {\n      id\n      name\n    }\n  }\n"): (typeof documents)["\n  query Assets {\n    projects {\n      id\n      name\n    }\n    games {\n      id\n      name\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Jobs($first: Int!) {\n    exportJobs(first: $first) {\n      edges {\n        node {\n          ...JobFields\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query Jobs($first: Int!) {\n    exportJobs(first: $first) {\n      edges {\n        node {\n          ...JobFields\n        }\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription JobChanges($since: String) {\n    exportJobs(since: $since) {\n      ...JobFields\n      changeCursor\n    }\n  }\n"): (typeof documents)["\n  subscription JobChanges($since: String) {\n    exportJobs(since: $since) {\n      ...JobFields\n      changeCursor\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation StartFraming($input: FramingExportInput!) {\n    startExport: startFramingExport(input: $input) {\n      ...StartPayload\n    }\n  }\n"): (typeof documents)["\n  mutation StartFraming($input: FramingExportInput!) {\n    startExport: startFramingExport(input: $input) {\n      ...StartPayload\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation StartOverlay($input: OverlayExportInput!) {\n    startExport: startOverlayExport(input: $input) {\n      ...StartPayload\n    }\n  }\n"): (typeof documents)["\n  mutation StartOverlay($input: OverlayExportInput!) {\n    startExport: startOverlayExport(input: $input) {\n      ...StartPayload\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation StartAnnotate($input: AnnotateExportInput!) {\n    startExport: startAnnotateExport(input: $input) {\n      ...StartPayload\n    }\n  }\n"): (typeof documents)["\n  mutation StartAnnotate($input: AnnotateExportInput!) {\n    startExport: startAnnotateExport(input: $input) {\n      ...StartPayload\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Cancel($id: ID!) {\n    cancelExport(id: $id) {\n      job {\n        ...JobFields\n      }\n      userErrors {\n        field\n        message\n        code\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation Cancel($id: ID!) {\n    cancelExport(id: $id) {\n      job {\n        ...JobFields\n      }\n      userErrors {\n        field\n        message\n        code\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Retry($id: ID!) {\n    retryExport(id: $id) {\n      ...StartPayload\n    }\n  }\n"): (typeof documents)["\n  mutation Retry($id: ID!) {\n    retryExport(id: $id) {\n      ...StartPayload\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;