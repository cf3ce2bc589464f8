import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Template } from './resolver.js';

export interface LoadedAssembly {
  /** The cloud assembly folder (`cdk.out`): the template and the `asset.<hash>` folders. */
  directory: string;
  stackName: string;
  template: Template;
}

/**
 * Synthesizes the control plane app in this process, as `cdk synth` does: cdk.json's context,
 * `overrides` on top (per-start names), NodejsFunction bundles built with the local esbuild.
 */
export async function synthesize(
  outdir: string,
  overrides: Record<string, unknown> = {},
): Promise<LoadedAssembly> {
  // Loaded here: the CDK libraries take seconds to import and --cdk-out does not need them.
  const [{ App }, { createControlPlane, STACK_NAME }, { PROJECT_ROOT }] = await Promise.all([
    import('aws-cdk-lib'),
    import('../../lib/app.js'),
    import('../../lib/bundling.js'),
  ]);
  const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  const app = new App({
    outdir,
    context: { ...cdkJson.context, 'aws:cdk:enable-asset-metadata': true, ...overrides },
  });
  createControlPlane(app);
  const assembly = app.synth();
  return readAssembly(assembly.directory, STACK_NAME);
}

/** Reads a synthesized cloud assembly; the stack is `stackName`, or the only one there. */
export function readAssembly(directory: string, stackName?: string): LoadedAssembly {
  if (!existsSync(directory)) throw new Error(`no cloud assembly at ${directory}`);
  const templates = readdirSync(directory).filter((f) => f.endsWith('.template.json'));
  const names = templates.map((f) => f.slice(0, -'.template.json'.length));
  const name = stackName ?? (names.length === 1 ? names[0] : undefined);
  if (!name || !names.includes(name))
    throw new Error(
      `cannot pick a stack in ${directory}: ${stackName ? `no ${stackName}` : 'several'} among [${names.join(', ')}]`,
    );
  const template = JSON.parse(readFileSync(join(directory, `${name}.template.json`), 'utf8')) as Template;
  return { directory, stackName: name, template };
}

/**
 * The folder of a function's bundle: the `aws:asset:path` metadata when the assembly carries it,
 * else `asset.<hash>` from the S3 key CDK gives the zipped asset.
 */
export function functionAssetDir(assembly: LoadedAssembly, logicalId: string): string {
  const resource = assembly.template.Resources[logicalId];
  const metadataPath = resource?.Metadata?.['aws:asset:path'];
  if (typeof metadataPath === 'string') return join(assembly.directory, metadataPath);
  const code = resource?.Properties?.Code as { S3Key?: unknown } | undefined;
  const key = typeof code?.S3Key === 'string' ? code.S3Key : undefined;
  const hash = key?.replace(/\.zip$/, '');
  if (!hash) throw new Error(`function ${logicalId} has no asset (Code.S3Key) the local stack can find`);
  const dir = join(assembly.directory, `asset.${hash}`);
  if (!existsSync(dir)) throw new Error(`function ${logicalId}: its asset folder ${dir} is missing`);
  return dir;
}
