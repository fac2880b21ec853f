// Preload that sends HTTPS connections for chosen HOST:PORT pairs to another
// address, like curl's --connect-to: the Host header, the TLS server name and
// the certificate check keep the original name. For testing against a local
// server (host-test fake-server) with its CA in NODE_EXTRA_CA_CERTS:
//
//   DATAVERSE_CONNECT_TO=contoso.crm.dynamics.com:443:127.0.0.1:8443,login.microsoftonline.com:443:127.0.0.1:8443 \
//   NODE_OPTIONS="--require $PWD/connect-to.cjs" node main.mjs
//
// Load it through NODE_OPTIONS: preview2-shim makes its HTTP requests in a
// worker thread, which inherits NODE_OPTIONS but not the parent's command-line
// flags (and, on Node 20, not --import). Does nothing when the variable is unset.
"use strict";
const https = require("node:https");

const routes = new Map();
for (const rule of (process.env.DATAVERSE_CONNECT_TO ?? "").split(/[,\s]+/).filter(Boolean)) {
  const [host, port, toHost, toPort] = rule.split(":");
  if (!host || !port || !toHost || !toPort) throw new Error(`DATAVERSE_CONNECT_TO: expected HOST:PORT:TO_HOST:TO_PORT, got ${rule}`);
  routes.set(`${host.toLowerCase()}:${port}`, { host: toHost, port: Number(toPort) });
}

if (routes.size > 0) {
  const createConnection = https.Agent.prototype.createConnection;
  https.Agent.prototype.createConnection = function (options, callback) {
    const to = routes.get(`${String(options.host).toLowerCase()}:${options.port}`);
    if (to) options = { ...options, servername: options.servername || options.host, host: to.host, port: to.port };
    return createConnection.call(this, options, callback);
  };
}
