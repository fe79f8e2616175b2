// Live updates: graphql-ws when websockets get through, SSE when a proxy blocks them.
import {
  Client,
  fetchExchange,
  subscriptionExchange,
  type Exchange,
  type ExecutionResult,
} from "@urql/core";
import { createClient as createWSClient, type Client as WSClient } from "graphql-ws";

export type Transport = "websocket" | "sse";

/** How long the websocket may take to be acknowledged before SSE is used instead. */
const WEBSOCKET_TIMEOUT_MS = 4000;

export interface Api {
  client: Client;
  transport: Transport;
  close(): void;
}

function authorization(token: string | null): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** A graphql-ws client once the server acknowledged it, or null when websockets do not
 * get through. A socket that worked once is reconnected; one that never did is not. */
function openWebSocket(url: string, token: string | null): Promise<WSClient | null> {
  let acknowledged = false;
  const socket = createWSClient({
    url,
    lazy: false,
    connectionParams: authorization(token),
    keepAlive: 15_000,
    retryAttempts: 5,
    shouldRetry: () => acknowledged,
    onNonLazyError: () => {},
  });
  return new Promise((resolve) => {
    const giveUp = (): void => {
      clearTimeout(timer);
      void socket.dispose();
      resolve(null);
    };
    const timer = setTimeout(giveUp, WEBSOCKET_TIMEOUT_MS);
    socket.on("connected", () => {
      acknowledged = true;
      clearTimeout(timer);
      resolve(socket);
    });
    socket.on("closed", () => {
      if (!acknowledged) giveUp();
    });
  });
}

type Request = Parameters<WSClient["subscribe"]>[0];

interface Sink {
  next(result: ExecutionResult): void;
  error(error: unknown): void;
  complete(): void;
}

/** Subscribes over the websocket. graphql-ws sends the same payload again when it
 * reconnects: a subscription taking `since` has it moved to the last `changeCursor`
 * received first, so the server resumes from there instead of missing what changed
 * while the socket was down. */
function subscribeResuming(
  socket: WSClient,
  request: { query?: string; variables?: Record<string, unknown> },
  sink: Sink,
): () => void {
  const variables: Record<string, unknown> = { ...request.variables };
  const payload: Request = { ...request, query: request.query ?? "", variables };
  const resumes = "since" in variables;
  return socket.subscribe(payload, {
    next: (result) => {
      const cursor = resumes ? lastCursor(result.data) : null;
      if (cursor) variables["since"] = cursor;
      sink.next(result as ExecutionResult);
    },
    error: (error) => sink.error(error),
    complete: () => sink.complete(),
  });
}

/** The `changeCursor` of a subscription result's root field, if it selects one. */
function lastCursor(data: unknown): string | null {
  if (typeof data !== "object" || data === null) return null;
  for (const value of Object.values(data)) {
    const cursor = (value as { changeCursor?: unknown } | null)?.changeCursor;
    if (typeof cursor === "string") return cursor;
  }
  return null;
}

/** The urql client: queries and mutations over fetch; subscriptions over the websocket,
 * or over fetch as SSE (`fetchSubscriptions`) when the websocket is blocked. */
export async function connect(token: string | null): Promise<Api> {
  const wsUrl = new URL("/graphql", location.href);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  const socket = await openWebSocket(wsUrl.href, token);
  const exchanges: Exchange[] = [fetchExchange];
  if (socket) {
    exchanges.push(
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: subscribeResuming(socket, request, sink) }),
        }),
      }),
    );
  }
  const client = new Client({
    url: "/graphql",
    exchanges,
    fetchSubscriptions: socket === null,
    preferGetMethod: false,
    requestPolicy: "network-only",
    fetchOptions: () => ({ headers: authorization(token) }),
  });
  return {
    client,
    transport: socket ? "websocket" : "sse",
    close: () => void socket?.dispose(),
  };
}
