// Starts the Amplify AppSync simulator on 127.0.0.1 only, with a schema whose mutations pass
// their input through (a NONE data source) so subscribers receive what was published.
// Usage: node appsync.js PORT SCHEMA_FILE API_KEY
// Prints "ready PORT" once it listens.
const http = require('http');
const fs = require('fs');
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (port, ...rest) {
  if (typeof port === 'number') return listen.call(this, port, '127.0.0.1', ...rest);
  return listen.call(this, port, ...rest);
};
const { AmplifyAppSyncSimulator } = require('@aws-amplify/amplify-appsync-simulator');

const [port, schemaPath, apiKey] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
const schema = fs.readFileSync(schemaPath, 'utf8');
const request = '{"version": "2017-02-28", "payload": $util.toJson($context.arguments.input)}';
const response = '$util.toJson($context.result)';
const mutations = [...schema.matchAll(/^\s*(\w+)\(input: \w+!\)/gm)].map((m) => m[1]);
const simulator = new AmplifyAppSyncSimulator({ port, wsPort: port });
simulator.init({
  schema: { content: schema },
  appSync: {
    name: 'lumina-test',
    apiKey,
    defaultAuthenticationType: { authenticationType: 'API_KEY' },
    additionalAuthenticationProviders: [],
  },
  dataSources: [{ type: 'NONE', name: 'passthrough' }],
  mappingTemplates: [
    { path: 'request.vtl', content: request },
    { path: 'response.vtl', content: response },
  ],
  resolvers: mutations.map((fieldName) => ({
    kind: 'UNIT',
    typeName: 'Mutation',
    fieldName,
    dataSourceName: 'passthrough',
    requestMappingTemplateLocation: 'request.vtl',
    responseMappingTemplateLocation: 'response.vtl',
  })),
});
simulator.start().then(() => console.log(`ready ${port}`), (e) => { console.error(e); process.exit(1); });
