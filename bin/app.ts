import { App } from 'aws-cdk-lib';
import { createControlPlane } from '../lib/app.js';

// Environment-agnostic: account and region come from the credentials `cdk deploy` runs with.
createControlPlane(new App());
