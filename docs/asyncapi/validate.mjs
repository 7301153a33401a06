// Validates an AsyncAPI document with the official parser (@asyncapi/parser):
// the AsyncAPI schema, its semantic rules and every message payload schema; then
// checks each message example against its payload schema with Ajv (the parser does
// that for AsyncAPI 2 only). Prints every diagnostic; exits 1 on any error
// (warnings and hints only print).
// Usage: node validate.mjs ../asyncapi.yaml
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';
import Ajv from 'ajv';

const path = resolve(process.argv[2] ?? '../asyncapi.yaml');
const text = await readFile(path, 'utf8');
const { document, diagnostics } = await new Parser().parse(text, { source: path });

const severity = (s) => DiagnosticSeverity[s]?.toLowerCase() ?? `severity ${s}`;
for (const d of diagnostics) {
  const line = d.range ? `:${d.range.start.line + 1}:${d.range.start.character + 1}` : '';
  const at = d.path?.length ? ` at ${d.path.join('.')}` : '';
  console.log(`${severity(d.severity)} ${d.code}${at} (${path}${line}): ${d.message}`);
}
let errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error).length;
if (document === undefined) {
  console.error(`asyncapi: ${path} is INVALID: ${errors} error(s)`);
  process.exit(1);
}

// The parser resolved every $ref; its own annotations are x- keywords, so
// non-strict mode. Payload schemas are JSON Schema draft-07 (AsyncAPI Schema).
const ajv = new Ajv({ strict: false, allErrors: true });
let examples = 0;
for (const message of document.allMessages()) {
  const schema = message.payload()?.json();
  if (schema === undefined) continue;
  const validate = ajv.compile(schema);
  for (const example of message.examples()) {
    examples += 1;
    if (!validate(example.payload())) {
      errors += 1;
      const problems = ajv.errorsText(validate.errors, { separator: '; ', dataVar: 'payload' });
      console.log(`error example ${message.id()}/${example.name()} does not match its payload schema: ${problems}`);
    }
  }
}

if (errors > 0) {
  console.error(`asyncapi: ${path} is INVALID: ${errors} error(s)`);
  process.exit(1);
}
console.log(
  `asyncapi: ${path} is valid AsyncAPI ${document.version()}: ` +
    `${document.allOperations().length} operations, ${document.allMessages().length} messages, ` +
    `${examples} examples match their schemas; ${diagnostics.length} warning(s)/hint(s)`,
);
