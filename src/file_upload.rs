//! A file column's upload, one chunk at a time: the caller hands the bytes
//! in order, never the whole file, so a component holds one chunk (at most
//! 4 MiB) however large the file. Over [`Client`]: the session's requests
//! are built by `webapi::file`.

// As in `client`: a call's failure carries its wire record by value.
#![allow(clippy::result_large_err)]

use crate::client::{CallOptions, CallResult, Client, Reply};
use crate::error::Error;
use crate::transport::Transport;
use crate::webapi::file::{self, UploadSession};

pub struct FileUpload {
    session: UploadSession,
    file_name: String,
    size: u64,
    sent: u64,
    options: CallOptions,
}

impl FileUpload {
    /// Opens the session for a file of `size` bytes (at least one: an
    /// empty file has no chunk to send; delete the column's file instead).
    #[allow(clippy::too_many_arguments)]
    pub fn start<T: Transport>(
        client: &mut Client<T>,
        entity_set: &str,
        key: &str,
        column: &str,
        file_name: &str,
        size: u64,
        options: CallOptions,
    ) -> CallResult<FileUpload> {
        if size == 0 {
            return Err(Error::InvalidRequest(
                "an empty file cannot be uploaded in chunks (delete the column's file instead)"
                    .into(),
            )
            .into());
        }
        let reply = client.start_upload(entity_set, key, column, file_name, &options)?;
        Ok(Reply {
            value: FileUpload {
                session: reply.value,
                file_name: file_name.to_string(),
                size,
                sent: 0,
                options,
            },
            call: reply.call,
        })
    }

    /// The largest chunk `send` takes.
    pub fn chunk_bytes(&self) -> u64 {
        self.session.chunk_bytes
    }

    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Sends the next `data` (1 to `chunk_bytes` bytes, not past the size
    /// declared); the chunk that reaches the size completes the upload.
    pub fn send<T: Transport>(&mut self, client: &mut Client<T>, data: Vec<u8>) -> CallResult<()> {
        if self.sent == self.size {
            return Err(Error::InvalidRequest("the upload is already complete".into()).into());
        }
        let last = self.sent + data.len() as u64 == self.size;
        let len = data.len() as u64;
        let request =
            file::upload_chunk(&self.session, &self.file_name, data, self.sent, self.size)?;
        let reply = client.upload_chunk(request, last, &self.options)?;
        self.sent += len;
        Ok(reply)
    }
}
