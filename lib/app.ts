import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { routes } from '../functions/routes.js';
import { ControlPlaneStack } from './stack.js';

export const STACK_NAME = 'GpuFleetControlPlane';

/** The control plane stack in `app`, checked by cdk-nag's AwsSolutions pack on every synth. */
export function createControlPlane(app: App): ControlPlaneStack {
  const stack = new ControlPlaneStack(app, STACK_NAME, {
    routes,
    description: 'GPU fleet control plane: HTTP API, functions, table, queues, schedules, artifacts',
  });
  // A validation plugin, not an aspect, in cdk-nag 3: unacknowledged findings fail the synth.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
