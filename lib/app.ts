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
  // The console's files, CDN and config.json (the URLs above), in a stack of its own.
  new ConsoleStack(app, CONSOLE_STACK_NAME, {
    apiUrl: stack.apiUrl,
    wsUrl: stack.webSocket.stage.url,
    description: 'GPU fleet console: S3 behind CloudFront, configured with the control plane URLs',
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
