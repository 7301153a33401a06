// Health check of the `mongo` service in docker-compose.yaml, run every 5 s as
//   mongosh --quiet --file /compose/init-replica-set.js
// (mounted read-only from compose/mongo/init-replica-set.js).
//
// 1. The first time, it initiates the single-node replica set `rs0`. Idempotent: a
//    node that already has a config (including one from an earlier run, kept in the
//    mongo-data volume) is left alone; if rs.status() failed for another reason,
//    rs.initiate() fails too (AlreadyInitialized or the same error), the script
//    exits non-zero and the next run tries again.
// 2. It exits 0 only when this node is the writable PRIMARY, so the services that
//    wait for `mongo: condition: service_healthy` start against a usable replica set
//    (change streams need one).
//
// The member host is the compose service name because that is the address the
// drivers of fetcher and api are told about and can resolve:
//   MONGO_CONNECTION_URI=mongodb://mongo:27017/?replicaSet=rs0
try {
  rs.status();
} catch (e) {
  rs.initiate({ _id: 'rs0', members: [{ _id: 0, host: 'mongo:27017' }] });
}
quit(db.hello().isWritablePrimary ? 0 : 1);
