// Starts dynalite (a DynamoDB stand-in) on 127.0.0.1 only, in memory.
// Usage: node dynalite.js PORT
// Prints "ready PORT" once it listens.
const dynalite = require('dynalite');
const port = Number(process.argv[2]);
const server = dynalite({ createTableMs: 50, deleteTableMs: 50, updateTableMs: 50 });
server.listen(port, '127.0.0.1', (err) => {
  if (err) { console.error(err); process.exit(1); }
  console.log(`ready ${port}`);
});
