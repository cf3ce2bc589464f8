/**
 * The agent's first statement, also prepended to the bundle (agent/build.ts) so it runs before any
 * dependency is evaluated: on an older Node.js the bundle would otherwise die at import with a
 * minified error. Written without newer syntax or APIs so an old runtime can run it.
 */
export const MIN_NODE_MAJOR = 24;

/** The one line to print when `version` (process.version) is older than MIN_NODE_MAJOR; undefined when fine. */
export function runtimeRefusal(version: string, execPath: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (major >= MIN_NODE_MAJOR) return undefined;
  return `fleet-agent: needs Node.js ${MIN_NODE_MAJOR} or later, but ${execPath} is ${version}; install with the control plane's install.sh (it brings its own runtime) or run the agent container image`;
}

const refusal = runtimeRefusal(process.version, process.execPath);
if (refusal) {
  process.stderr.write(`${refusal}\n`);
  process.exit(1);
}
