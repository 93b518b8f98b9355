// A real OpenID provider for the browser tests: `oidc-provider` (the certified Node.js
// implementation) on loopback, with three test users, the Stellar client registered, PKCE
// required, and its development sign-in pages (any password). Control routes let a test
// rotate the signing key, or make the next ID tokens bad (signed with a key the JWKS does not
// publish, or for another audience) to see Stellar refuse them, or change a user's groups.
//
//   PORT=… REDIRECT=http://127.0.0.1:…/auth/oidc/callback SECRET=… node oidc/provider.mjs
//
// Prints `ready <issuer>` once it listens.
import http from 'node:http';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const PORT = Number(process.env.PORT ?? 0);
const ISSUER = `http://127.0.0.1:${PORT}`;
const REDIRECT = process.env.REDIRECT;
const SECRET = process.env.SECRET;
if (!PORT || !REDIRECT || !SECRET) {
  console.error('PORT, REDIRECT and SECRET are needed');
  process.exit(2);
}

// The people at the provider: a secops engineer, a partner developer of acme, and someone in
// no Stellar group.
const USERS = {
  sam: { name: 'Sam Secops', preferred_username: 'sam', groups: ['staff', 'stellar-secops'] },
  pia: { name: 'Pia Partner', preferred_username: 'pia', groups: ['acme-partners'], tenant: 'acme' },
  uma: { name: 'Uma Unmapped', preferred_username: 'uma', groups: ['marketing'] },
  // Leaves the secops group during the tests.
  lea: { name: 'Lea Leaver', preferred_username: 'lea', groups: ['stellar-secops'] },
};

async function signingKey(kid) {
  const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
  return { kid, alg: 'RS256', use: 'sig', ...(await jose.exportJWK(privateKey)) };
}

let keys = [await signingKey('key-1')];
let generation = 1;
const foreign = await jose.generateKeyPair('RS256');
// normal | foreign-key | wrong-audience
let mode = 'normal';

function build() {
  const provider = new Provider(ISSUER, {
    clients: [{
      client_id: 'stellar',
      client_secret: SECRET,
      redirect_uris: [REDIRECT],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    findAccount: async (_ctx, sub) => (USERS[sub]
      ? { accountId: sub, claims: async () => ({ sub, ...USERS[sub] }) }
      : undefined),
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
      tenant: ['tenant'],
    },
    scopes: ['openid', 'profile', 'groups', 'tenant'],
    // Put the claims of the granted scopes in the ID token.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    jwks: { keys },
    cookies: { keys: ['stellar-e2e-provider-cookies'] },
    features: { devInteractions: { enabled: true } },
  });
  // The bad ID tokens a test asks for, made from the real one.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path !== '/token' || mode === 'normal' || !ctx.body?.id_token) return;
    const claims = jose.decodeJwt(ctx.body.id_token);
    if (mode === 'wrong-audience') {
      claims.aud = 'another-client';
      const real = await jose.importJWK(keys[0], 'RS256');
      ctx.body.id_token = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: keys[0].kid }).sign(real);
    } else {
      ctx.body.id_token = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'not-published' }).sign(foreign.privateKey);
    }
  });
  return provider.callback();
}

let handler = build();
const server = http.createServer(async (req, res) => {
  if (req.method === 'POST' && req.url === '/__control/rotate') {
    // A new signing key first; the old one stays published for tokens already out.
    generation += 1;
    keys = [await signingKey(`key-${generation}`), keys[0]];
    handler = build();
    res.end(JSON.stringify({ kid: keys[0].kid }));
    return;
  }
  if (req.method === 'POST' && req.url?.startsWith('/__control/groups/')) {
    // `/__control/groups/USER/G1,G2`: the user's groups change at the provider.
    const [user, groups = ''] = req.url.slice('/__control/groups/'.length).split('/');
    if (!USERS[user]) { res.statusCode = 404; res.end(); return; }
    USERS[user].groups = groups.split(',').filter(Boolean);
    res.end(JSON.stringify(USERS[user]));
    return;
  }
  if (req.method === 'POST' && req.url?.startsWith('/__control/mode/')) {
    mode = req.url.slice('/__control/mode/'.length);
    res.end(JSON.stringify({ mode }));
    return;
  }
  handler(req, res);
});
server.listen(PORT, '127.0.0.1', () => console.log(`ready ${ISSUER}`));
