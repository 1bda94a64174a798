import { formatEther, isAddress, maxUint256, parseEther, type Address } from "viem";
import { usageError } from "./cliError.ts";

/** "1000", "0.5" → token wei. Rejects anything but a plain decimal above zero that a uint256 holds. */
export function parseTokens(flag: string, value: string | undefined): bigint {
  if (value === undefined) throw usageError(`${flag} is required (an amount of DIN, e.g. 1000 or 0.5)`);
  // Thousands written as the CLI prints them (1,000) are taken too.
  if (/^\d{1,3}(,\d{3})+(\.\d+)?$/.test(value)) value = value.replaceAll(",", "");
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
  const id = BigInt(value);
  if (id >= 1n << 256n) throw usageError(`${flag} ${value} is more than any id can be (256 bits)`);
  return id;
}

/** A proposal id: in decimal, or in hex with 0x as Governor tools and explorers show it. */
export function parseProposalId(value: string): bigint {
  if (/^0x[0-9a-fA-F]{1,64}$/.test(value)) return BigInt(value);
  if (/^\d+$/.test(value)) return parseId("--proposal", value);
  throw usageError(`--proposal must be a whole number or 0x hex, not "${value}"`);
}

/**
 * A moment of the chain's clock, and how far it is from the chain's `now`: "2026-12-06T04:21:53Z
 * (in 1 min 30 s)". Deadlines are the chain's, and a devnet's clock runs ahead of the wall clock
 * (minutes after a while): a time alone, read against one's own clock, looked minutes away when
 * seconds were left (a governance walkthrough missed a case's deadline so).
 */
export function formatDue(at: bigint, now: bigint): string {
  const seconds = Number(at - now);
  const span = (s: number) => (s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`);
  return `${formatTime(at)} (${seconds > 0 ? `in ${span(seconds)}` : seconds < 0 ? `${span(-seconds)} ago` : "now"})`;
}

/** Unix seconds → ISO time, for people. */
export function formatTime(seconds: bigint | number): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}
