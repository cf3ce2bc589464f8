/**
 * CloudFormation intrinsic functions over a map of physical resources: what CloudFormation does
 * when it deploys the template, for the local stack (local/stack) and for checks that read the
 * synthesized roles' policies.
 */

export interface Template {
  Parameters?: Record<string, { Type: string; Default?: unknown }>;
  Resources: Record<string, TemplateResource>;
  Outputs?: Record<string, { Value: unknown; Description?: string }>;
  Conditions?: Record<string, unknown>;
}

export interface TemplateResource {
  Type: string;
  Properties?: Record<string, unknown>;
  DependsOn?: string | string[];
  Metadata?: Record<string, unknown>;
}

/** What a logical id became: its name (what `Ref` gives for most types), its ARN, other attributes. */
export interface PhysicalResource {
  /** The value of `Ref`. */
  ref: string;
  arn?: string;
  /** `Fn::GetAtt` attributes; `Arn` falls back to `arn`. */
  attributes?: Record<string, string>;
}

export interface PseudoParameters {
  region: string;
  accountId: string;
  partition?: string;
  urlSuffix?: string;
  stackName?: string;
  stackId?: string;
}

export interface Resolver {
  /** `value` with every intrinsic replaced by what it resolves to. */
  resolve<T = unknown>(value: unknown): T;
  /** `value` resolved to a string; throws when it is not one. */
  resolveString(value: unknown): string;
  readonly pseudo: Required<PseudoParameters>;
}

const NO_VALUE = Symbol('AWS::NoValue');

export class UnresolvableError extends Error {
  override name = 'UnresolvableError';
}

/**
 * One resolver for the intrinsics the synthesized template uses: Ref, Fn::GetAtt, Fn::Join,
 * Fn::Sub, Fn::Select, Fn::Split, Fn::If/Fn::Equals (conditions read from the template) and the
 * pseudo parameters AWS::Region, AWS::AccountId, AWS::Partition, AWS::URLSuffix, AWS::StackName,
 * AWS::StackId, AWS::NoValue.
 */
export function createResolver(
  template: Template,
  physical: Record<string, PhysicalResource>,
  pseudoParameters: PseudoParameters = {
    region: process.env.AWS_REGION ?? 'us-east-1',
    accountId: '123456789012',
  },
): Resolver {
  const partition =
    pseudoParameters.partition ?? (pseudoParameters.region.startsWith('cn-') ? 'aws-cn' : 'aws');
  const pseudo: Required<PseudoParameters> = {
    region: pseudoParameters.region,
    accountId: pseudoParameters.accountId,
    partition,
    urlSuffix: pseudoParameters.urlSuffix ?? (partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com'),
    stackName: pseudoParameters.stackName ?? 'local',
    stackId:
      pseudoParameters.stackId ??
      `arn:${partition}:cloudformation:${pseudoParameters.region}:${pseudoParameters.accountId}:stack/local/local`,
  };
  const conditions = template.Conditions ?? {};

  const ref = (name: string): unknown => {
    switch (name) {
      case 'AWS::Region':
        return pseudo.region;
      case 'AWS::AccountId':
        return pseudo.accountId;
      case 'AWS::Partition':
        return pseudo.partition;
      case 'AWS::URLSuffix':
        return pseudo.urlSuffix;
      case 'AWS::StackName':
        return pseudo.stackName;
      case 'AWS::StackId':
        return pseudo.stackId;
      case 'AWS::NoValue':
        return NO_VALUE;
    }
    const resource = physical[name];
    if (resource) return resource.ref;
    const parameter = template.Parameters?.[name];
    if (parameter && parameter.Default !== undefined) return parameter.Default;
    throw new UnresolvableError(`Ref ${name}: no such resource or parameter with a value`);
  };

  const getAtt = (logicalId: string, attribute: string): string => {
    const resource = physical[logicalId];
    if (!resource) throw new UnresolvableError(`Fn::GetAtt ${logicalId}.${attribute}: no such resource`);
    const value = resource.attributes?.[attribute] ?? (attribute === 'Arn' ? resource.arn : undefined);
    if (value === undefined)
      throw new UnresolvableError(
        `Fn::GetAtt ${logicalId}.${attribute}: attribute unknown for ${template.Resources[logicalId]?.Type}`,
      );
    return value;
  };

  const sub = (text: string, variables: Record<string, unknown>): string =>
    text.replace(/\$\{([^}]*)\}/g, (whole, inner: string) => {
      if (inner.startsWith('!')) return `\${${inner.slice(1)}}`; // ${!Literal}
      if (inner in variables) return String(resolve(variables[inner]));
      const dot = inner.indexOf('.');
      if (dot > 0 && !inner.startsWith('AWS::')) return getAtt(inner.slice(0, dot), inner.slice(dot + 1));
      return String(ref(inner));
    });

  const condition = (name: string): boolean => {
    const c = conditions[name];
    if (c === undefined) throw new UnresolvableError(`Condition ${name} is not in the template`);
    return Boolean(resolve(c));
  };

  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve).filter((v) => v !== NO_VALUE);
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 1) {
      const [key, arg] = entries[0]!;
      switch (key) {
        case 'Ref':
          return ref(String(arg));
        case 'Fn::GetAtt': {
          const [id, ...attr] = Array.isArray(arg) ? (arg as string[]) : String(arg).split('.');
          return getAtt(String(resolve(id)), attr.map((a) => String(resolve(a))).join('.'));
        }
        case 'Fn::Join': {
          const [sep, items] = arg as [string, unknown];
          return (resolve(items) as unknown[]).map(String).join(String(resolve(sep)));
        }
        case 'Fn::Sub': {
          if (typeof arg === 'string') return sub(arg, {});
          const [text, vars] = arg as [string, Record<string, unknown>];
          return sub(String(resolve(text)), vars ?? {});
        }
        case 'Fn::Select': {
          const [index, list] = arg as [unknown, unknown];
          const items = resolve(list) as unknown[];
          const i = Number(resolve(index));
          if (!Array.isArray(items) || !(i in items))
            throw new UnresolvableError(`Fn::Select index ${i} out of range`);
          return items[i];
        }
        case 'Fn::Split': {
          const [sep, text] = arg as [string, unknown];
          return String(resolve(text)).split(String(resolve(sep)));
        }
        case 'Fn::Equals': {
          const [a, b] = arg as [unknown, unknown];
          return JSON.stringify(resolve(a)) === JSON.stringify(resolve(b));
        }
        case 'Fn::Not':
          return !resolve((arg as unknown[])[0]);
        case 'Fn::And':
          return (arg as unknown[]).every((c) => Boolean(resolve(c)));
        case 'Fn::Or':
          return (arg as unknown[]).some((c) => Boolean(resolve(c)));
        case 'Condition':
          return condition(String(arg));
        case 'Fn::If': {
          const [name, yes, no] = arg as [string, unknown, unknown];
          return resolve(condition(name) ? yes : no);
        }
        case 'Fn::Base64':
          return Buffer.from(String(resolve(arg))).toString('base64');
        case 'Fn::GetAZs':
          return ['a', 'b', 'c'].map((z) => `${pseudo.region}${z}`);
        case 'Fn::ImportValue':
        case 'Fn::FindInMap':
        case 'Fn::GetStackOutput':
          throw new UnresolvableError(`${key} is not supported by the local stack`);
      }
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      const resolved = resolve(v);
      if (resolved !== NO_VALUE) out[k] = resolved;
    }
    return out;
  };

  return {
    pseudo,
    resolve: <T>(value: unknown) => resolve(value) as T,
    resolveString: (value: unknown) => {
      const resolved = resolve(value);
      if (typeof resolved !== 'string' && typeof resolved !== 'number' && typeof resolved !== 'boolean')
        throw new UnresolvableError(`expected a string, got ${JSON.stringify(resolved)}`);
      return String(resolved);
    },
  };
}
