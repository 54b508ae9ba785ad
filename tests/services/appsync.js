// Starts the Amplify AppSync simulator on 127.0.0.1 only, with a schema and the resolvers in
// the `resolvers/` directory beside it (`<Type>.<field>.request.vtl` / `.response.vtl`).
// Mutation resolvers use a NONE data source (the input passes through to subscribers); the
// others use an AMAZON_DYNAMODB data source on the given endpoint and table, and are left
// out when none is given.
// Usage: node appsync.js PORT SCHEMA_FILE API_KEY [DYNAMODB_ENDPOINT TABLE]
// Prints "ready PORT" once it listens.
const http = require('http');
const fs = require('fs');
const path = require('path');
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (port, ...rest) {
  if (typeof port === 'number') return listen.call(this, port, '127.0.0.1', ...rest);
  return listen.call(this, port, ...rest);
};
const { AmplifyAppSyncSimulator } = require('@aws-amplify/amplify-appsync-simulator');

const [port, schemaPath, apiKey, dynamoEndpoint, table] = [
  Number(process.argv[2]), process.argv[3], process.argv[4], process.argv[5], process.argv[6],
];
const schema = fs.readFileSync(schemaPath, 'utf8');
const dir = path.join(path.dirname(schemaPath), 'resolvers');
const dataSources = [{ type: 'NONE', name: 'none' }];
if (dynamoEndpoint) {
  dataSources.push({
    type: 'AMAZON_DYNAMODB',
    name: 'dialogueTable',
    config: {
      tableName: table,
      endpoint: dynamoEndpoint,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    },
  });
}
const mappingTemplates = [];
const resolvers = [];
for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.request.vtl')).sort()) {
  const [typeName, fieldName] = file.split('.');
  const dataSourceName = typeName === 'Mutation' ? 'none' : 'dialogueTable';
  if (dataSourceName === 'dialogueTable' && !dynamoEndpoint) continue;
  const response = `${typeName}.${fieldName}.response.vtl`;
  for (const f of [file, response]) {
    mappingTemplates.push({ path: f, content: fs.readFileSync(path.join(dir, f), 'utf8') });
  }
  resolvers.push({
    kind: 'UNIT',
    typeName,
    fieldName,
    dataSourceName,
    requestMappingTemplateLocation: file,
    responseMappingTemplateLocation: response,
  });
}
const simulator = new AmplifyAppSyncSimulator({ port, wsPort: port });
simulator.init({
  schema: { content: schema },
  appSync: {
    name: 'lumina-test',
    apiKey,
    defaultAuthenticationType: { authenticationType: 'API_KEY' },
    additionalAuthenticationProviders: [],
  },
  dataSources,
  mappingTemplates,
  resolvers,
});
simulator.start().then(() => console.log(`ready ${port}`), (e) => { console.error(e); process.exit(1); });
