// Reference peer for Deputy's benchmark (benches/run.sh): a node-oidc-provider
// instance offering client_credentials (client_secret_basic) with ES256 JWT
// access tokens (RFC 9068) for the resource https://api.example.com.
//
// Usage: node server.js [PORT]   (or PORT=... node server.js); listens on 127.0.0.1 only.
//
// Introspection: node-oidc-provider refuses to introspect structured (JWT)
// access tokens (400 unsupported_token_type), so a second resource,
// https://opaque.example.com, issues opaque access tokens that its
// /token/introspection endpoint can answer. Tokens live in the provider's
// in-memory adapter (no database).
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.argv[2] || process.env.PORT || 3000);
const host = '127.0.0.1';
const issuer = `http://${host}:${port}`;

export const CLIENT_ID = process.env.PEER_CLIENT_ID || 'bench';
export const CLIENT_SECRET = process.env.PEER_CLIENT_SECRET || 'bench-secret-0123456789';
const JWT_RESOURCE = 'https://api.example.com';
const OPAQUE_RESOURCE = 'https://opaque.example.com';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: 'bench-es256',
  alg: 'ES256',
  use: 'sig',
};

const resourceServers = {
  [JWT_RESOURCE]: {
    scope: 'read write',
    audience: JWT_RESOURCE,
    accessTokenTTL: 3600,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'ES256' } },
  },
  [OPAQUE_RESOURCE]: {
    scope: 'read write',
    audience: OPAQUE_RESOURCE,
    accessTokenTTL: 3600,
    accessTokenFormat: 'opaque',
  },
};

const configuration = {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    client_name: 'Bench client',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'read write',
  }],
  jwks: { keys: [signingKey] },
  // The only key is ES256: make it the default for everything the provider signs.
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['read', 'write'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // The caller may introspect the tokens issued to itself.
      allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf || JWT_RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        const info = resourceServers[resourceIndicator];
        if (!info) throw new Provider.errors.InvalidTarget();
        return info;
      },
    },
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;

// Tiny health endpoint, answered before the provider's routes.
provider.use(async (ctx, next) => {
  if (ctx.path === '/healthz') {
    ctx.body = 'ok';
    return undefined;
  }
  return next();
});

const server = provider.listen(port, host, () => {
  console.log(`oidc-provider peer listening on ${issuer} (pid ${process.pid})`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
