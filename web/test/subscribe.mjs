// Follows one export job with a real GraphQL client, over HTTP streaming, and prints
// each result as a JSON line, then {"complete": true} (or {"error": ...}).
//
//   node test/subscribe.mjs apollo|urql|graphql-sse URL JOB_ID [TOKEN]
//
// apollo: Apollo Client's HttpLink (multipart subscriptions); urql: fetchExchange with
// fetchSubscriptions (SSE); graphql-sse: its client in distinct-connections mode.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { Client, fetchExchange } from "@urql/core";
import { createClient as createSSEClient } from "graphql-sse";
import { onEnd, pipe, subscribe } from "wonka";

const [clientName, url, jobId, token] = process.argv.slice(2);
const query = `subscription Watch($id: ID!) {
  exportJob(id: $id) { id status progress message }
}`;
const variables = { id: jobId };
const headers = token ? { Authorization: `Bearer ${token}` } : {};

const print = (value) => console.log(JSON.stringify(value));
const sink = {
  next: (result) => print(result),
  error: (error) => {
    print({ error: String(error?.message ?? error) });
    process.exitCode = 1;
  },
  complete: () => print({ complete: true }),
};

const clients = {
  apollo() {
    const client = new ApolloClient({
      link: new HttpLink({ uri: url, headers }),
      cache: new InMemoryCache(),
    });
    client.subscribe({ query: gql(query), variables }).subscribe(sink);
  },
  urql() {
    const client = new Client({
      url,
      exchanges: [fetchExchange],
      fetchSubscriptions: true,
      fetchOptions: { headers },
    });
    pipe(
      client.subscription(query, variables),
      onEnd(sink.complete),
      subscribe((result) =>
        result.error ? sink.error(result.error) : sink.next({ data: result.data }),
      ),
    );
  },
  "graphql-sse"() {
    createSSEClient({ url, headers }).subscribe({ query, variables }, sink);
  },
};

clients[clientName]();
