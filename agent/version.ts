/** Reported in RegisterRequest.agentVersion and the User-Agent header. */
export const AGENT_VERSION = '0.1.0';
