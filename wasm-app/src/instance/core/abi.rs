//! The ABIs over a core instance: each call lends its inputs, calls the
//! export and reads what it returned, every pointer checked.

use arrow::buffer::Buffer;
use wasm_abi::sig;

use super::exports::{lookup, resolved, Entry};
use super::{CoreInstance, LentSlot};
use crate::buffer_pool::BufferPool;
use crate::deadline::{self, Deadline};
use crate::error::{Error, Limit, Result};
use crate::instance::{AbiSupport, Backend};
use crate::memory;
use crate::stderr_tail::StderrTail;
use crate::string_abi::{StringAbi, MAX_GREETING};

impl Backend for CoreInstance {
    fn arm(&mut self, deadline: &Deadline) -> Result<()> {
        self.store.data_mut().calls.reset();
        deadline::arm(&mut self.store, &self.limits, deadline)
    }

    fn end(&mut self) -> Option<Error> {
        self.store.data().calls.refusal.take()
    }

    async fn release(&mut self) -> Result<()> {
        CoreInstance::release(self).await
    }

    async fn answer(&mut self) -> Result<i32> {
        let export = self.exports.answer.clone();
        self.call(wasm_abi::ANSWER_FN, sig::UNIT_TO_I32, &export, ())
            .await
    }

    async fn greet(&mut self, abi: StringAbi, name: &str) -> Result<String> {
        match abi {
            StringAbi::C => {
                self.exports.require(Entry::GreetC)?;
                let ptr = self.lend(LentSlot::Data, &[name.as_bytes(), &[0]]).await?;
                let export = self.exports.greet_c.clone();
                let ret = self
                    .call(wasm_abi::GREET_C, sig::I32_TO_I32, &export, ptr as i32)
                    .await?;
                if ret == wasm_abi::ERROR_RESULT {
                    return Err(self.guest_error().await);
                }
                self.adopt(ret as u32);
                let bytes =
                    memory::read_cstr(self.memory_bytes(), ret as u32, MAX_GREETING, "greeting")?;
                Ok(memory::utf8(bytes, "greeting")?.to_owned())
            }
            StringAbi::Rust => {
                self.exports.require(Entry::GreetRust)?;
                let ptr = self.lend(LentSlot::Data, &[name.as_bytes()]).await?;
                let export = self.exports.greet_rust.clone();
                let args = (ptr as i32, name.len() as i32);
                let ret = self
                    .call(wasm_abi::GREET_RUST, sig::PAIR_TO_I32, &export, args)
                    .await?;
                let (gptr, glen) = self.take_pair(ret, "greeting pair").await?;
                if glen as usize > MAX_GREETING {
                    return Err(Error::BadString(format!(
                        "greeting of {glen} bytes exceeds the {MAX_GREETING}-byte cap"
                    )));
                }
                let bytes = memory::slice(self.memory_bytes(), gptr, glen, "greeting")?;
                Ok(memory::utf8(bytes, "greeting")?.to_owned())
            }
        }
    }

    async fn process<P: AsRef<[u8]>>(
        &mut self,
        meta: &[u8],
        data: &[P],
        data_len: u32,
        results: &BufferPool,
    ) -> Result<Buffer> {
        self.exports.require(Entry::Process)?;
        let meta_ptr = self.lend(LentSlot::Meta, &[meta]).await?;
        // With no data the guest does not look at the pointer.
        let data_ptr = match data_len {
            0 => 0,
            _ => self.lend(LentSlot::Data, data).await?,
        };
        let export = self.exports.process.clone();
        let args = (
            meta_ptr as i32,
            meta.len() as i32,
            data_ptr as i32,
            data_len as i32,
        );
        let ret = self
            .call(wasm_abi::PROCESS_ARROW, sig::QUAD_TO_I32, &export, args)
            .await?;
        let (ptr, len) = self.take_pair(ret, "Arrow result pair").await?;
        let bytes = memory::slice(self.memory_bytes(), ptr, len, "Arrow result")?;
        // Copied into a 64-byte aligned host buffer, reusing an earlier
        // result's allocation once nothing views it any more.
        Ok(results.copy(bytes))
    }

    async fn call_bytes(&mut self, export: &str, input: &[u8]) -> Result<Vec<u8>> {
        // Looked up per call: the name is the caller's, any export may be
        // meant, and a lookup costs far less than the call.
        let func = lookup::<(i32, i32), i32>(&self.instance, &mut self.store, export);
        let func = resolved(&func, export, sig::PAIR_TO_I32)?;
        self.exports.require(Entry::Named)?;
        let ptr = self.lend(LentSlot::Data, &[input]).await?;
        let args = (ptr as i32, input.len() as i32);
        let ret = self.call_func(export, &func, args).await?;
        let (ptr, len) = self.take_pair(ret, "result pair").await?;
        let max = self.limits.output_limit();
        if u64::from(len) > max {
            return Err(Error::LimitExceeded(Limit::Output(max)));
        }
        Ok(memory::slice(self.memory_bytes(), ptr, len, "result")?.to_vec())
    }

    fn stderr(&self) -> &StderrTail {
        &self.store.data().stderr
    }

    fn memory_size(&self) -> usize {
        self.memory_bytes().len()
    }

    fn abi_support(&self) -> AbiSupport {
        self.exports.support()
    }
}
