// A failure `wirecage run` reports as `wirecage: MESSAGE` with exit 125: its own file, so that
// stage 2 can load the registration code (which throws it) without the whole of from-config.ts.
export class RunError extends Error {}
