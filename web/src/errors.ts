// What went wrong, in words for the panel: network errors, GraphQL errors, userErrors.
import type { CombinedError } from "@urql/core";

export interface UserError {
  field?: readonly string[] | null;
  message: string;
  code: string;
}

export const describeUserError = (error: UserError): string =>
  `${error.field?.length ? `${error.field.join(".")}: ` : ""}${error.message} (${error.code})`;

export function describeError(error: CombinedError): string[] {
  if (error.networkError) return [`Cannot reach the API: ${error.networkError.message}`];
  return error.graphQLErrors.map((graphQLError) => graphQLError.message);
}

/** The server wants a (better) token: HTTP 401, or UNAUTHENTICATED from a resolver. */
export function needsToken(error: CombinedError | undefined): boolean {
  if (!error) return false;
  const status = (error.response as Response | undefined)?.status;
  return (
    status === 401 ||
    error.graphQLErrors.some(
      (graphQLError) => graphQLError.extensions["code"] === "UNAUTHENTICATED",
    )
  );
}
