export * from './types.js';
export * from './priority.js';
export { planPlacements, requirementsKey, nodeMatches, DEFAULT_DRAIN_AFTER_MS } from './placement.js';
export { planRebalance, applyRebalance, isRebalanceStrategy, REBALANCE_STRATEGIES } from './rebalance.js';
