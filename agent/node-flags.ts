/**
 * How the agent's Node.js runs wherever it is installed: install.sh's systemd unit, the agent
 * image's entrypoint and bench:dispatch use these (test/unit/agent/node-flags.test.ts holds the
 * first two to them). Each trades speed the agent does not need (it waits on the network and the
 * engine) for resident memory:
 *   --max-semi-space-size=1   young generation of 1 MB semi-spaces (the default grows to 16 MB)
 *   --max-old-space-size=128  a heap limit well above a command burst's (the idle heap is ~10 MB)
 *   --v8-pool-size=1          one V8 worker thread instead of one per core, each with its stack and malloc arena
 *   --no-opt --no-maglev      no optimizing compilers: their code (7 MB of the binary) is never paged
 *                             in and their compile zones never grow the malloc heap
 *   --optimize-for-size       V8's memory-over-speed choices (smaller inline caches, eager shrinking)
 *   --single-threaded         no V8 background threads at all (GC and compiles on the main thread)
 *   --bytecode-old-age=1      bytecode of functions not run since the last full GC is dropped: what
 *                             only ran at start (module set-up, schema building) does not stay; a
 *                             later call compiles it again
 *   --no-sparkplug            no baseline compiler either: functions stay interpreted, so the idle
 *                             agent's code space (and the compiler's pages of the binary) never
 *                             grows; measured 0.6-0.9 MB less at the end of bench:dispatch's idle minute
 *   --expose-gc               the agent collects its garbage once it falls idle after start-up and
 *                             after a burst of commands (agent/idle-gc.ts), instead of holding it
 *                             until V8's memory reducer gets to it tens of seconds later
 *   --use-openssl-ca          trust the host's CA store where OpenSSL looks for it (/etc/ssl/certs,
 *                             one file per CA read when a connection needs it; /etc/ssl/cert.pem;
 *                             SSL_CERT_DIR and SSL_CERT_FILE), instead of Node.js's ~150 bundled
 *                             roots, which loading node:tls parses and keeps (0.7 MB less on https);
 *                             install.sh names the host's bundle where it is elsewhere, the image
 *                             holds Node.js's roots that way; a control plane's own CA goes in
 *                             NODE_EXTRA_CA_CERTS
 * The interpreter stays the one tier: --jitless (and --lite-mode) would also refuse WebAssembly
 * (ssh2) and regular expression compilation. MALLOC_ARENA_MAX=1: one glibc malloc arena for all threads;
 * MALLOC_TRIM_THRESHOLD_ and MALLOC_MMAP_THRESHOLD_ fixed at 128 KB: glibc otherwise raises both
 * after the first large free (up to 32 MB and 64 MB) and keeps the freed memory of start-up.
 * NODE_COMPILE_CACHE (COMPILE_CACHE, in the state folder): V8's code cache of the bundle, written on
 * the first start (install.sh warms it with `--version`); later starts deserialize the bundle
 * instead of parsing its 1.6 MB, whose parser zones (13 MB of malloc) would stay in glibc's heap.
 */
export const AGENT_NODE_FLAGS = [
  '--max-semi-space-size=1',
  '--max-old-space-size=128',
  '--v8-pool-size=1',
  '--no-opt',
  '--no-maglev',
  '--optimize-for-size',
  '--single-threaded',
  '--bytecode-old-age=1',
  '--no-sparkplug',
  '--expose-gc',
  '--use-openssl-ca',
] as const;

export const AGENT_ENV = {
  MALLOC_ARENA_MAX: '1',
  MALLOC_TRIM_THRESHOLD_: '131072',
  MALLOC_MMAP_THRESHOLD_: '131072',
} as const;

/** NODE_COMPILE_CACHE's folder inside the agent's state folder. */
export const COMPILE_CACHE = 'compile-cache';
