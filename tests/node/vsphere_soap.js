// node-vsphere-soap (npm `soap` underneath) against one `esxi-sim serve`: it fetches our
// /sdk/vimService.wsdl and builds every call from it, so this proves the WSDL as a client
// uses it. Connects (RetrieveServiceContent + Login), reads the host's name and
// about.fullName, checks a wrong password is refused, logs out. Run by ci/node:
//
//   node tests/node/vsphere_soap.js HOST:PORT USER PASSWORD EXPECTED_FULL_NAME
//
// Exits 0 when every check passes, 1 on the first mismatch.
'use strict';

const nvs = require('node-vsphere-soap');

const [host, user, password, fullName] = process.argv.slice(2);
if (!fullName) {
  console.error('usage: vsphere_soap.js HOST:PORT USER PASSWORD EXPECTED_FULL_NAME');
  process.exit(2);
}

function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exit(1);
}

function check(what, got, want) {
  if (got !== want) fail(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  console.log(`ok: ${what} = ${JSON.stringify(got)}`);
}

// A call as a promise; node-vsphere-soap reports results and errors as events.
function run(vc, method, args) {
  return new Promise((resolve, reject) => {
    vc.runCommand(method, args)
      .once('result', (result) => resolve(result))
      .once('error', (err) => reject(new Error(`${method}: ${err}`)));
  });
}

function connect(pass) {
  return new Promise((resolve, reject) => {
    // sslVerify false: our certificate is self-signed.
    const vc = new nvs.Client(host, user, pass, false);
    vc.once('ready', () => resolve(vc));
    vc.once('error', (err) => reject(err));
  });
}

// The value of a string property in an ObjectContent as npm soap parses it.
function prop(content, name) {
  const props = [].concat(content.propSet || []);
  const p = props.find((x) => x.name === name);
  if (!p) fail(`no ${name} in ${JSON.stringify(content)}`);
  return typeof p.val === 'object' ? p.val.$value : p.val;
}

async function main() {
  const vc = await connect(password);
  const sc = vc.serviceContent;
  check('about.fullName', sc.about.fullName, fullName);
  check('about.apiType', sc.about.apiType, 'HostAgent');
  check('Login userName', vc.userName, user);

  const pc = sc.propertyCollector;
  const host = { attributes: { type: 'HostSystem' }, $value: 'ha-host' };
  const spec = {
    propSet: [{ type: 'HostSystem', all: false, pathSet: ['name', 'summary.config.name'] }],
    objectSet: [{ obj: host, skip: false }],
  };
  const r = await run(vc, 'RetrieveProperties', { _this: pc, specSet: [spec] });
  const contents = [].concat(r.returnval || []);
  check('RetrieveProperties objects', contents.length, 1);
  const name = prop(contents[0], 'name');
  if (typeof name !== 'string' || name.length === 0) fail(`name: ${JSON.stringify(name)}`);
  check('HostSystem name = summary.config.name', prop(contents[0], 'summary.config.name'), name);
  console.log(`ok: HostSystem ha-host name = ${JSON.stringify(name)}`);

  const ex = await run(vc, 'RetrievePropertiesEx', { _this: pc, specSet: [spec], options: {} });
  check('RetrievePropertiesEx name', prop([].concat(ex.returnval.objects)[0], 'name'), name);

  const t = await run(vc, 'CurrentTime', { _this: 'ServiceInstance' });
  if (Number.isNaN(Date.parse(t.returnval))) fail(`CurrentTime: ${JSON.stringify(t.returnval)}`);
  console.log(`ok: CurrentTime = ${t.returnval}`);

  await run(vc, 'Logout', { _this: sc.sessionManager });
  console.log('ok: Logout');

  // A wrong password must not connect. node-vsphere-soap emits the fault and then throws it
  // from a callback, so it arrives as an uncaught exception.
  const refused = await new Promise((resolve) => {
    process.once('uncaughtException', (e) => resolve(String(e)));
    connect(password + 'x').then(() => resolve(null), (e) => resolve(String(e)));
  });
  if (!refused || !/incorrect user name or password/.test(refused)) {
    fail(`a wrong password: ${refused}`);
  }
  console.log('ok: wrong password refused (InvalidLogin)');
}

main().then(
  () => process.exit(0),
  (e) => fail(e && e.stack ? e.stack : String(e)),
);
