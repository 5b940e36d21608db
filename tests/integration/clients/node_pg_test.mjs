// The node `pg` driver through pgring (transaction pooling); results checked on shard0.
//
// Named prepared statements ({name, text, values}) run many times by several clients of
// a pool and by separate clients while another client keeps pgring's server connections
// moving (node-pg parses a named statement once per connection, so pgring must prepare
// it again on every server connection it hands out), including one statement name that
// means a different text on each client; binary results (binary: true) compared with the
// same query on shard0 directly; a transaction rolled back and one committed.
//
// Run through node_pg_test.sh, which installs the driver (npm ci) when it is missing.

import fs from 'node:fs';
import process from 'node:process';
import pg from 'pg';

const TABLE = 'clients_node';

class TestFailure extends Error {}

function check(cond, msg) {
  if (!cond) throw new TestFailure(msg);
}

function loadEnv() {
  const path = process.env.PGRING_TEST_ENV;
  if (!path) throw new TestFailure('PGRING_TEST_ENV must name the env file of the test cluster');
  const env = {};
  for (const line of fs.readFileSync(path, 'utf8').split('\n')) {
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)='([^']*)'\s*$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  for (const k of ['PGRING_DSN', 'SHARD_DSNS']) {
    if (!env[k]) throw new TestFailure(`${path} does not define ${k}`);
  }
  return env;
}

// withDeadline rejects when promise has not settled after ms.
function withDeadline(what, promise, ms = 60000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TestFailure(`${what} did not finish within ${ms / 1000}s (hung)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function shard0(env, text, values) {
  const c = new pg.Client({ connectionString: env.SHARD_DSNS.split(' ')[0] });
  await c.connect();
  try {
    return (await c.query(text, values)).rows;
  } finally {
    await c.end();
  }
}

async function testPooledNamedStatements(env) {
  console.log('-- named prepared statements through a pool of 6 clients');
  const pool = new pg.Pool({ connectionString: env.PGRING_DSN, max: 6, connectionTimeoutMillis: 10000 });
  try {
    const jobs = [];
    for (let i = 0; i < 300; i++) {
      jobs.push(pool.query({ name: 'q1', text: 'SELECT $1::int + 1 AS v, $2::text AS s', values: [i, `s${i}`] }));
      if (i < 200) {
        jobs.push(pool.query({ name: 'ins1', text: `INSERT INTO ${TABLE} (id, v, pid) VALUES ($1, $2, pg_backend_pid())`, values: [i, `v${i}`] }));
      }
    }
    const results = await withDeadline('300 SELECTs and 200 INSERTs through the pool', Promise.all(jobs));
    let sel = 0;
    for (const r of results) {
      if (r.command !== 'SELECT') {
        check(r.command === 'INSERT' && r.rowCount === 1, `INSERT result ${r.command} ${r.rowCount}`);
        continue;
      }
      const row = r.rows[0];
      check(row.v === sel + 1 && row.s === `s${sel}`, `q1 #${sel} returned ${JSON.stringify(row)}`);
      sel++;
    }
    check(sel === 300, `${sel} SELECT results, want 300`);
  } finally {
    await pool.end();
  }
  const rows = await shard0(env, `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, min(id) AS lo, max(id) AS hi,
                                         bool_and(v = 'v' || id) AS ok FROM ${TABLE}`);
  check(rows[0].n === 200 && rows[0].d === 200 && rows[0].lo === 0 && rows[0].hi === 199 && rows[0].ok,
    `rows inserted with the named statement on shard0: ${JSON.stringify(rows[0])}`);
}

async function testSameNameOtherText(env) {
  console.log('-- the same statement names on 4 clients, other server connections each time');
  const clients = [];
  for (let k = 0; k < 4; k++) {
    const c = new pg.Client({ connectionString: env.PGRING_DSN });
    await c.connect();
    clients.push(c);
  }
  const churn = new pg.Client({ connectionString: env.PGRING_DSN });
  await churn.connect();
  let stop = false;
  let churned = 0;
  const churning = (async () => {
    while (!stop) {
      await churn.query('BEGIN');
      await churn.query('SELECT pg_sleep(0.002)');
      await churn.query('COMMIT');
      churned++;
    }
  })();
  const pidsPerClient = [];
  try {
    await withDeadline('4 clients x 60 transactions', Promise.all(clients.map(async (c, k) => {
      const pids = new Set();
      for (let i = 0; i < 60; i++) {
        await c.query('BEGIN');
        // 'q2' is a different statement on every client.
        const r = await c.query({ name: 'q2', text: `SELECT $1::int * ${k + 2} AS v, pg_backend_pid() AS pid`, values: [i] });
        check(r.rows[0].v === i * (k + 2), `client ${k} txn ${i}: q2 returned ${r.rows[0].v}, want ${i * (k + 2)}`);
        pids.add(r.rows[0].pid);
        const s = await c.query({ name: 'q3', text: 'SELECT $1::text || $2::text AS s', values: [`c${k}`, `-${i}`] });
        check(s.rows[0].s === `c${k}-${i}`, `client ${k} txn ${i}: q3 returned ${s.rows[0].s}`);
        await c.query('COMMIT');
      }
      pidsPerClient[k] = pids.size;
    })));
  } finally {
    stop = true;
    await churning;
    await churn.end();
    for (const c of clients) await c.end();
  }
  console.log(`   server connections per client: ${pidsPerClient.join(', ')}; churn transactions: ${churned}`);
  check(pidsPerClient.reduce((a, b) => a + b, 0) > 4,
    'every client ran on a single server connection: re-preparing on other server connections was not exercised');
}

async function testBinary(env) {
  console.log('-- binary results');
  // node-pg decodes every field of a DataRow as UTF-8 before its binary type parser
  // sees it, so a byte >= 0x80 would be lost in the driver itself: the values below
  // encode to bytes < 0x80 only. Through pgring and on shard0 directly they must agree.
  const query = {
    text: `SELECT 16909060::int4 AS i4, 72623859790382856::int8 AS i8, 2.5::float8 AS f8, true AS b,
                  'tëxt ☃'::text AS t, NULL::int4 AS n, 32000::int2 AS i2, 0.5::float4 AS f4,
                  $1::text AS p`,
    values: ['param'],
    binary: true,
  };
  const client = new pg.Client({ connectionString: env.PGRING_DSN });
  await client.connect();
  let viaProxy;
  try {
    viaProxy = await client.query(query);
    // And by name, executed again (Bind/Execute only) with binary results.
    for (let i = 0; i < 20; i++) {
      const r = await client.query({ name: 'bin1', text: 'SELECT $1::int4 AS v, $1::int4 * 2 AS w', values: [i], binary: true });
      check(r.fields.every((f) => f.format === 'binary'), `bin1: result formats ${r.fields.map((f) => f.format)}`);
      check(r.rows[0].v === i && r.rows[0].w === 2 * i, `bin1 #${i} returned ${JSON.stringify(r.rows[0])}`);
    }
  } finally {
    await client.end();
  }
  check(viaProxy.fields.every((f) => f.format === 'binary'),
    `result formats ${viaProxy.fields.map((f) => f.format).join(',')}, want binary`);
  const direct = new pg.Client({ connectionString: env.SHARD_DSNS.split(' ')[0] });
  await direct.connect();
  let viaShard;
  try {
    viaShard = await direct.query(query);
  } finally {
    await direct.end();
  }
  const a = viaProxy.rows[0];
  const b = viaShard.rows[0];
  for (const k of Object.keys(b)) {
    const same = Buffer.isBuffer(b[k]) ? Buffer.isBuffer(a[k]) && a[k].equals(b[k])
      : b[k] instanceof Date ? a[k] instanceof Date && a[k].getTime() === b[k].getTime()
        : a[k] === b[k];
    check(same, `binary column ${k}: through pgring ${String(a[k])}, on shard0 ${String(b[k])}`);
  }
  check(a.i4 === 16909060 && String(a.i8) === '72623859790382856' && a.f8 === 2.5 && a.b === true &&
    a.t === 'tëxt ☃' && a.n === null && a.i2 === 32000 && a.f4 === 0.5 && a.p === 'param',
  `binary values through pgring: ${JSON.stringify(a)}`);
}

async function testTransactions(env) {
  console.log('-- transactions: rollback and commit');
  const pool = new pg.Pool({ connectionString: env.PGRING_DSN, max: 2 });
  const count = async (id) => (await shard0(env, `SELECT count(*)::int AS n FROM ${TABLE} WHERE id = $1`, [id]))[0].n;
  try {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query({ name: 'ins2', text: `INSERT INTO ${TABLE} (id, v) VALUES ($1, $2)`, values: [9001, 'rolled back'] });
      check((await c.query(`SELECT count(*)::int AS n FROM ${TABLE} WHERE id = 9001`)).rows[0].n === 1,
        'own uncommitted row not visible inside the transaction');
      check(await count(9001) === 0, 'uncommitted row visible on shard0');
      await c.query('ROLLBACK');
      check(await count(9001) === 0, 'rolled back row is on shard0');

      await c.query('BEGIN');
      let failed = false;
      try {
        await c.query({ name: 'ins2', text: `INSERT INTO ${TABLE} (id, v) VALUES ($1, $2)`, values: [1, 'duplicate'] });
      } catch (e) {
        failed = e.code === '23505';
      }
      check(failed, 'duplicate key insert did not fail with 23505');
      let aborted = false;
      try {
        await c.query('SELECT 1');
      } catch (e) {
        aborted = e.code === '25P02';
      }
      check(aborted, 'statement in a failed transaction did not fail with 25P02');
      await c.query('ROLLBACK');

      await c.query('BEGIN');
      await c.query({ name: 'ins2', text: `INSERT INTO ${TABLE} (id, v) VALUES ($1, $2)`, values: [9002, 'committed'] });
      await c.query('COMMIT');
      check(await count(9002) === 1, 'committed row is not on shard0');
    } finally {
      c.release();
    }
    const r = await pool.query(`SELECT count(*)::int AS n FROM ${TABLE} WHERE id IN (9001, 9002)`);
    check(r.rows[0].n === 1, `through pgring after the transactions: ${r.rows[0].n} rows of 9001/9002, want 1`);
  } finally {
    await pool.end();
  }
}

async function main() {
  const env = loadEnv();
  await shard0(env, `DROP TABLE IF EXISTS ${TABLE}`);
  await shard0(env, `CREATE TABLE ${TABLE} (id int PRIMARY KEY, v text, pid int)`);
  await testPooledNamedStatements(env);
  await testSameNameOtherText(env);
  await testBinary(env);
  await testTransactions(env);
  await shard0(env, `DROP TABLE IF EXISTS ${TABLE}`);
}

const name = 'node_pg_test.mjs';
main().then(() => {
  console.log(`PASS ${name}`);
  process.exit(0);
}, (e) => {
  console.error(`FAIL ${name}: ${e instanceof TestFailure ? e.message : (e && e.stack) || e}`);
  process.exit(1);
});
