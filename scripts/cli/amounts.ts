import { formatEther, isAddress, maxUint256, parseEther, type Address } from "viem";
import { usageError } from "./cliError.ts";

/** "1000", "0.5" → token wei. Rejects anything but a plain decimal above zero that a uint256 holds. */
export function parseTokens(flag: string, value: string | undefined): bigint {
  if (value === undefined) throw usageError(`${flag} is required (an amount of DIN, e.g. 1000 or 0.5)`);
  const match = /^\d+(?:\.(\d+))?$/.exec(value);
  if (match === null) throw usageError(`${flag} must be an amount of DIN like 1000 or 0.5, not "${value}"`);
  if ((match[1]?.length ?? 0) > 18) throw usageError(`${flag} ${value} has more than 18 decimals: DIN is counted to 18`);
  const wei = parseEther(value);
  if (wei === 0n) throw usageError(`${flag} must be above zero`);
  if (wei > maxUint256) throw usageError(`${flag} ${value} DIN is more than any balance can be (at most ${formatEther(maxUint256)})`);
  return wei;
}

/** Token wei → "1,000.5 DIN". */
export function formatTokens(wei: bigint): string {
  const [whole, fraction] = formatEther(wei).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${grouped}${fraction ? `.${fraction}` : ""} DIN`;
}

export function parseAddress(flag: string, value: string | undefined): Address {
  if (value === undefined) throw usageError(`${flag} is required (a 0x address)`);
  if (!isAddress(value, { strict: false })) throw usageError(`${flag} must be a 0x address, not "${value}"`);
  if (!isAddress(value)) {
    throw usageError(`${flag} ${value} has mixed case that is not its checksum (EIP-55): a typo? Check it, or write it all in lower case`);
  }
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
