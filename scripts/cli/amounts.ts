import { formatEther, isAddress, parseEther, type Address } from "viem";
import { usageError } from "./cliError.ts";

/** "1000", "0.5" → token wei. Rejects anything that is not a plain non-negative decimal. */
export function parseTokens(flag: string, value: string | undefined): bigint {
  if (value === undefined) throw usageError(`${flag} is required (an amount of DIN, e.g. 1000 or 0.5)`);
  if (!/^\d+(\.\d{1,18})?$/.test(value)) {
    throw usageError(`${flag} must be an amount of DIN like 1000 or 0.5, not "${value}"`);
  }
  return parseEther(value);
}

/** Token wei → "1,000.5 DIN". */
export function formatTokens(wei: bigint): string {
  const [whole, fraction] = formatEther(wei).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${grouped}${fraction ? `.${fraction}` : ""} DIN`;
}

export function parseAddress(flag: string, value: string | undefined): Address {
  if (value === undefined) throw usageError(`${flag} is required (a 0x address)`);
  if (!isAddress(value)) throw usageError(`${flag} must be a 0x address, not "${value}"`);
  return value;
}

export function parseId(flag: string, value: string | undefined): bigint {
  if (value === undefined) throw usageError(`${flag} is required`);
  if (!/^\d+$/.test(value)) throw usageError(`${flag} must be a whole number, not "${value}"`);
  return BigInt(value);
}

/** Unix seconds → ISO time, for people. */
export function formatTime(seconds: bigint | number): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}
