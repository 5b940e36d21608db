-- The demo schema of pgring's local cluster: a small multi-tenant shop.
--
-- scripts/cluster writes a pgring.yaml that shards tenants, users, orders and order_items
-- on tenant_id (bigint) and keeps plans as a reference table (a full copy on every
-- shard). scripts/quickstart runs this file through pgring (psql "$PGRING_DSN"), which
-- runs DDL on every shard, then loads sample rows.
--
-- Every sharded table carries tenant_id and starts its primary key with it, so that a
-- tenant's rows live together on one shard and joins on tenant_id stay on that shard.
-- Foreign keys are left out: pgring moves ring ranges between shards table by table.
--
-- Idempotent: running it again changes nothing.

CREATE TABLE IF NOT EXISTS plans (
  plan_id    int PRIMARY KEY,
  name       text NOT NULL,
  price      numeric(10, 2) NOT NULL
);

CREATE TABLE IF NOT EXISTS tenants (
  tenant_id  bigint PRIMARY KEY,
  name       text NOT NULL,
  plan_id    int NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
  tenant_id  bigint NOT NULL,
  user_id    bigint NOT NULL,
  email      text NOT NULL,
  name       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS users_tenant_email ON users (tenant_id, email);

CREATE TABLE IF NOT EXISTS orders (
  tenant_id  bigint NOT NULL,
  order_id   bigint NOT NULL,
  user_id    bigint NOT NULL,
  status     text NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'cancelled')),
  amount     numeric(12, 2) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, order_id)
);
CREATE INDEX IF NOT EXISTS orders_tenant_user ON orders (tenant_id, user_id);
CREATE INDEX IF NOT EXISTS orders_tenant_created ON orders (tenant_id, created_at);

CREATE TABLE IF NOT EXISTS order_items (
  tenant_id  bigint NOT NULL,
  order_id   bigint NOT NULL,
  item_id    int NOT NULL,
  sku        text NOT NULL,
  qty        int NOT NULL CHECK (qty > 0),
  price      numeric(10, 2) NOT NULL,
  PRIMARY KEY (tenant_id, order_id, item_id)
);
