#!/usr/bin/env node
// Prints vitest's JSON report as one plain closing line, "tests: N passed, N failed, N skipped",
// which CI reads whatever the test runner. Exits non-zero when the report is missing or empty.
import { readFileSync } from 'node:fs';

const reportPath = process.argv[2] ?? '.vitest-results.json';
let report;
try {
  report = JSON.parse(readFileSync(reportPath, 'utf8'));
} catch (error) {
  console.error(`print-test-summary: no test report at ${reportPath}: ${error.message}`);
  process.exit(1);
}
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
if (report.numTotalTests === 0) {
  console.error('print-test-summary: no test ran');
  process.exit(1);
}
