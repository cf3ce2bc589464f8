import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { routes } from '../functions/routes.js';
import { ConsoleStack } from './console.js';
import { InstallAssetsStack } from './install-assets.js';
import { ControlPlaneStack } from './stack.js';

export const STACK_NAME = 'GpuFleetControlPlane';
export const CONSOLE_STACK_NAME = 'GpuFleetConsole';
export const INSTALL_ASSETS_STACK_NAME = 'GpuFleetInstallAssets';

/** The control plane stack in `app`, checked by cdk-nag's AwsSolutions pack on every synth. */
export function createControlPlane(app: App): ControlPlaneStack {
  const stack = new ControlPlaneStack(app, STACK_NAME, {
    routes,
    description: 'GPU fleet control plane: HTTP API, functions, table, queues, schedules, artifacts',
  });
  // The console's files and the API behind one CloudFront distribution, in a stack of its own.
  new ConsoleStack(app, CONSOLE_STACK_NAME, {
    httpApiEndpoint: stack.httpApiEndpoint,
    wsUrl: stack.webSocket.stage.url,
    apiPaths: routes.map((r) => r.path),
    ...(stack.originSecretName ? { originSecretName: stack.originSecretName } : {}),
    description: 'GPU fleet console and API: S3 and the HTTP API behind one CloudFront distribution',
  });
  // What install.sh downloads, put in the control plane's install bucket at deploy time.
  new InstallAssetsStack(app, INSTALL_ASSETS_STACK_NAME, {
    bucket: stack.installAssets.bucket,
    description: 'GPU fleet install files: the agent bundle, Node.js runtimes and agent images in S3',
  });
  // A validation plugin, not an aspect, in cdk-nag 3: unacknowledged findings fail the synth.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
