/** A flag's whole number of at least `min`; an Error naming the flag, the text and the usage otherwise. */
export function wholeNumber(name: string, text: string, min: number, usage: string): number {
  if (!/^\d+$/.test(text) || Number(text) < min)
    throw new Error(`${name} must be a whole number from ${min}, got ${JSON.stringify(text)}\n${usage}`);
  return Number(text);
}
