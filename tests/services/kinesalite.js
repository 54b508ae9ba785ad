// Starts kinesalite (a Kinesis stand-in) on 127.0.0.1 only.
// Usage: node kinesalite.js PORT [DATA_DIR]
// Prints "ready PORT" once it listens. With DATA_DIR, streams persist there (LevelDB).
const kinesalite = require('kinesalite');
const port = Number(process.argv[2]);
const opts = { createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 100 };
if (process.argv[3]) opts.path = process.argv[3];
kinesalite(opts).listen(port, '127.0.0.1', (err) => {
  if (err) { console.error(err); process.exit(1); }
  console.log(`ready ${port}`);
});
