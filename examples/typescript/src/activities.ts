// The activity: ordinary Node.js code, retried by the server's retry policy.
export async function greet(name: string): Promise<string> {
  return `Hello, ${name}!`;
}
