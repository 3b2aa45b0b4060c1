import { UsageError } from './usage.js';
export function checkCommand(_argv: string[]): number {
  throw new UsageError('check is being written');
}
