/**
 * Swarm-style placement constraints (`node.labels.cluster==vision`, `node.hostname!=agx1`):
 * parsed once when a service is written, checked by the planner against each node's facts.
 */
export interface NodeFacts {
  id: string;
  hostname: string;
  labels: Record<string, string>;
  arch: string;
  os: string;
}

export interface Constraint {
  /** `labels.<key>`, `hostname`, `id`, `role`, `platform.arch` or `platform.os`. */
  field: string;
  op: '==' | '!=';
  value: string;
}

const FIELDS = /^(labels\.[A-Za-z0-9_.-]+|hostname|id|role|platform\.arch|platform\.os)$/;

/** A constraint string, or an error message saying what is wrong with it. */
export function parseConstraint(text: string): Constraint | string {
  const m = /^\s*node\.([A-Za-z0-9_.-]+)\s*(==|!=)\s*(.+?)\s*$/.exec(text);
  if (!m) return 'expected node.<field>==<value> or node.<field>!=<value>';
  const [, field, op, value] = m as unknown as [string, string, '==' | '!=', string];
  if (!FIELDS.test(field))
    return `unknown field node.${field}: use node.labels.<key>, node.hostname, node.id, node.role, node.platform.arch or node.platform.os`;
  return { field, op, value };
}

function valueOf(field: string, node: NodeFacts): string | undefined {
  if (field.startsWith('labels.')) return node.labels[field.slice('labels.'.length)];
  switch (field) {
    case 'hostname':
      return node.hostname;
    case 'id':
      return node.id;
    // Every node runs workloads; the control plane is the only manager.
    case 'role':
      return 'worker';
    case 'platform.arch':
      return node.arch;
    case 'platform.os':
      return node.os;
    default:
      return undefined;
  }
}

export function satisfies(node: NodeFacts, constraints: readonly Constraint[]): boolean {
  return constraints.every((c) => (valueOf(c.field, node) === c.value) === (c.op === '=='));
}

export const formatConstraint = (c: Constraint) => `node.${c.field}${c.op}${c.value}`;
