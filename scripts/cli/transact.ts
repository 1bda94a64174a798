import type { Abi, Address, Hash } from "viem";
import { abis } from "./abis.ts";
import { CliError } from "./cliError.ts";
import { requireWallet, type CliContext } from "./context.ts";
import { formatTokens } from "./amounts.ts";
import { explainRevert, isRevert, revertName } from "./explainRevert.ts";

export type Call = { address: Address; abi: Abi; functionName: string; args?: readonly unknown[] };

/**
 * Simulates `call` (so a revert is explained before anything is sent), sends it, and waits for
 * the receipt. Throws a CliError whose message says why in words.
 */
export async function transact(ctx: CliContext, call: Call): Promise<Hash> {
  const wallet = requireWallet(ctx);
  try {
    const { request } = await simulate(ctx, call);
    const hash = await wallet.writeContract(request);
    // A block may take seconds (12 on Ethereum): say what is being waited for, not on stdout (the answer's).
    if (!ctx.json) console.error(`sent ${contractName(ctx, call.address)}.${call.functionName} (tx ${hash}); waiting for it to be mined…`);
    const receipt = await ctx.publicClient.waitForTransactionReceipt({ hash }).catch((error: Error) => {
      // It went out: sending it again could do it twice.
      throw new CliError(`transaction ${hash} was sent, but its receipt could not be read (${error.message.split("\n")[0]}): check it before sending again`);
    });
    if (receipt.status !== "success") throw new CliError(`transaction ${hash} reverted`);
    return hash;
  } catch (error) {
    if (error instanceof CliError) throw error;
    if (!isRevert(error) && (await ctx.publicClient.getBalance({ address: wallet.account.address }).catch(() => null)) === 0n) {
      // A node words this in many ways, Hardhat's as "Missing or invalid parameters".
      throw new CliError(`${wallet.account.address} has no ETH to pay for gas: send it some first`);
    }
    throw new CliError(explainRevert(error));
  }
}

/** The deployment's name for `address` (DinToken, ProviderRegistry, …), or the address. */
function contractName(ctx: CliContext, address: Address): string {
  const found = Object.entries(ctx.contracts).find(([, a]) => a.toLowerCase() === address.toLowerCase());
  return found?.[0] ?? address;
}

/** Runs `call` from the key's account without sending it; throws viem's error on a revert. */
function simulate(ctx: CliContext, call: Call) {
  return ctx.publicClient.simulateContract({
    account: requireWallet(ctx).account,
    address: call.address,
    // Decode against every contract's errors: a call may revert inside another contract.
    abi: [...call.abi, ...abis.all],
    functionName: call.functionName,
    args: call.args ?? [],
  });
}

export async function read<T>(ctx: CliContext, call: Call): Promise<T> {
  try {
    return (await ctx.publicClient.readContract({
      address: call.address,
      abi: [...call.abi, ...abis.all],
      functionName: call.functionName,
      args: call.args ?? [],
    })) as T;
  } catch (error) {
    throw new CliError(explainRevert(error));
  }
}

/**
 * Sends `call`, in which `spender` takes `amount` of the sender's DIN, approving that first when
 * the allowance is short. Nothing goes out unless the call would then pass: the balance is checked,
 * and the call simulated before the approval, so any refusal but the missing allowance (not
 * registered, no stake to slash, a name too long) is said with the approval unsent. (That holds
 * because the contracts take the tokens last, after their own checks.)
 */
export async function transactSpending(ctx: CliContext, spender: Address, amount: bigint, call: Call): Promise<{ hash: Hash; approval: Hash | undefined }> {
  const owner = requireWallet(ctx).account.address;
  const token = { address: ctx.contracts.DinToken, abi: abis.token };
  const [balance, allowance] = await Promise.all([
    read<bigint>(ctx, { ...token, functionName: "balanceOf", args: [owner] }),
    read<bigint>(ctx, { ...token, functionName: "allowance", args: [owner, spender] }),
  ]);
  if (balance < amount) throw new CliError(`${owner} holds ${formatTokens(balance)} but ${formatTokens(amount)} is needed`);
  let approval: Hash | undefined;
  if (allowance < amount) {
    try {
      await simulate(ctx, call);
    } catch (error) {
      if (revertName(error) !== "ERC20InsufficientAllowance") throw new CliError(explainRevert(error));
    }
    approval = await transact(ctx, { ...token, functionName: "approve", args: [spender, amount] });
  }
  return { hash: await transact(ctx, call), approval };
}
