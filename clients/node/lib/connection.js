// Connection settings and query cancellation for the Worker.
//
// A Worker opens its own connections (one per slot, one for the
// heartbeat), so it takes what `pg.Client` takes, plus libpq's keyword
// form: undefined or "" (libpq's environment variables PGHOST, PGPORT,
// PGUSER, PGDATABASE, PGPASSWORD, PGAPPNAME, which node-postgres reads
// itself), a URI ("postgresql://user@host:port/db", handed to pg as its
// connectionString), a keyword/value string ("host=/tmp port=5432
// dbname=app", parsed here: pg does not read that form), or a config
// object for pg.Client.

import net from 'node:net';

const KEYWORDS = {
  host: 'host',
  hostaddr: 'host',
  port: 'port',
  user: 'user',
  password: 'password',
  dbname: 'database',
  application_name: 'application_name',
  options: 'options',
};

// Parse libpq's keyword/value form: key=value pairs separated by spaces,
// values optionally in single quotes with \' and \\ escapes.
export function parseKeywordDsn(dsn) {
  const config = {};
  let i = 0;
  const n = dsn.length;
  while (i < n) {
    while (i < n && /\s/.test(dsn[i])) i++;
    if (i >= n) break;
    const eq = dsn.indexOf('=', i);
    if (eq < 0) throw new TypeError(`invalid connection string: missing "=" after "${dsn.slice(i)}"`);
    const key = dsn.slice(i, eq).trim();
    i = eq + 1;
    while (i < n && /\s/.test(dsn[i])) i++;
    let value = '';
    if (dsn[i] === "'") {
      i++;
      while (i < n && dsn[i] !== "'") {
        if (dsn[i] === '\\' && i + 1 < n) i++;
        value += dsn[i++];
      }
      if (i >= n) throw new TypeError('invalid connection string: unterminated quoted value');
      i++;
    } else {
      while (i < n && !/\s/.test(dsn[i])) {
        if (dsn[i] === '\\' && i + 1 < n) i++;
        value += dsn[i++];
      }
    }
    if (key in KEYWORDS) {
      config[KEYWORDS[key]] = key === 'port' ? Number(value) : value;
    } else if (key === 'connect_timeout') {
      config.connectionTimeoutMillis = Number(value) * 1000;
    } else if (key === 'sslmode') {
      if (value === 'disable') config.ssl = false;
      else if (value === 'verify-ca' || value === 'verify-full') config.ssl = { rejectUnauthorized: true };
      else config.ssl = { rejectUnauthorized: false };
    } else {
      throw new TypeError(`unsupported connection parameter "${key}"`);
    }
  }
  return config;
}

// The pg.Client config for `connection` (see the header comment).
export function clientConfig(connection) {
  if (connection === undefined || connection === null || connection === '') return {};
  if (typeof connection === 'string') {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(connection) || connection.startsWith('socket:'))
      return { connectionString: connection };
    return parseKeywordDsn(connection);
  }
  if (typeof connection === 'object') return { ...connection };
  throw new TypeError('connection must be a string, a pg.Client config object or undefined');
}

// Ask the server to cancel what `client` (a connected pg.Client) runs now:
// PostgreSQL's CancelRequest on a new socket, as libpq's PQcancel does
// (node-postgres has no public call for it). Resolves when sent; a
// failure is ignored (the caller retries while it still needs to).
export function cancelQuery(client) {
  return new Promise((resolve) => {
    const pid = client.processID;
    const key = client.secretKey;
    if (pid == null || key == null) return resolve(false);
    const host = client.host || 'localhost';
    const port = client.port || 5432;
    const sock = host.startsWith('/')
      ? net.connect(`${host}/.s.PGSQL.${port}`)
      : net.connect(port, host);
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(5000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => {
      const buf = Buffer.alloc(16);
      buf.writeInt32BE(16, 0);
      buf.writeInt32BE(80877102, 4);     // the cancel request code
      buf.writeInt32BE(pid, 8);
      buf.writeInt32BE(key, 12);
      sock.end(buf, () => done(true));
    });
  });
}
