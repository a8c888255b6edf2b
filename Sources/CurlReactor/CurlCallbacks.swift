// CurlCallbacks: the C entry points libcurl calls; each forwards to the queue-confined core or transfer.
import CCurl

let curlSocketCallback: curl_socket_callback = { _, fd, what, userp, _ in
    guard let userp else { return 0 }
    // The core outlives every callback (it retains itself while curl holds its pointer): no retain per call.
    Unmanaged<ReactorCore>.fromOpaque(userp)._withUnsafeGuaranteedRef { $0.onSocket(fd: fd, what: what) }
    return 0
}

let curlTimerCallback: curl_multi_timer_callback = { _, ms, userp in
    guard let userp else { return 0 }
    Unmanaged<ReactorCore>.fromOpaque(userp)._withUnsafeGuaranteedRef { $0.onCurlTimer(ms: ms) }
    return 0
}

let curlOpenSocketCallback: curl_opensocket_callback = { clientp, purpose, address in
    guard let clientp else { return cc_socket_bad() }
    return Unmanaged<ReactorCore>.fromOpaque(clientp).takeUnretainedValue().onOpenSocket(purpose: purpose, address: address)
}

let curlCloseSocketCallback: curl_closesocket_callback = { clientp, fd in
    guard let clientp else { return 0 }
    return Unmanaged<ReactorCore>.fromOpaque(clientp).takeUnretainedValue().onCloseSocket(fd)
}

let curlWriteCallback: curl_write_callback = { ptr, size, nmemb, userdata in
    let n = size * nmemb
    guard let userdata else { return 0 }
    guard n > 0, let ptr else { return n }
    // The handle outlives its requests; its transfer is held by the reactor's active list while curl runs it.
    return Unmanaged<CurlEasy>.fromOpaque(userdata)._withUnsafeGuaranteedRef { $0.transfer?.appendBody(ptr, n) ?? false } ? n : 0
}

let curlHeaderCallback: curl_write_callback = { ptr, size, nmemb, userdata in
    let n = size * nmemb
    guard let userdata, let ptr, n > 0 else { return n }
    Unmanaged<Transfer>.fromOpaque(userdata)._withUnsafeGuaranteedRef { $0.headerLine(ptr, n) }
    return n
}
