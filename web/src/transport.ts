// Live updates: graphql-ws when websockets get through, SSE when a proxy blocks them.
import { Client, fetchExchange, subscriptionExchange, type Exchange } from "@urql/core";
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
          subscribe: (sink) => ({
            unsubscribe: socket.subscribe({ ...request, query: request.query ?? "" }, sink),
          }),
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
