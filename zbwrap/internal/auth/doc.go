// Package auth obtains the OAuth tokens a Zerobus stream presents when it
// opens: the client-credentials grant of the Databricks workspace,
// downscoped to one table.
//
// The request follows the Zerobus wire contract: POST
// {workspace_url}/oidc/v1/token with HTTP Basic client authentication and
// the form fields grant_type=client_credentials, scope=all-apis,
// resource=api://databricks/workspaces/<workspace-id>/zerobusDirectWriteApi
// (the workspace id is the first DNS label of the Zerobus endpoint's host)
// and authorization_details granting USE CATALOG, USE SCHEMA and
// SELECT+MODIFY on the table. It is made with
// golang.org/x/oauth2/clientcredentials (EndpointParams carries the extra
// fields, AuthStyleInHeader the Basic authentication) rather than by hand.
//
// Tokens are cached per table and replaced ahead of expiry (5 minutes, or
// half the lifetime of short tokens). A single fetch per table runs at a
// time; concurrent callers wait for it. A forced refresh (the server said
// Unauthenticated) always fetches a new token.
//
// Failures are *Error values: HTTP 4xx answers are final (bad credentials or
// grants); 5xx answers, timeouts and network failures are Retryable. The
// client secret never appears in an error: server text is scrubbed of it.
package auth
