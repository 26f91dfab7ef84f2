using System.Diagnostics;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>
/// Certificates made with openssl at test time, in a folder of their own (deleted on dispose): a CA and a second,
/// unrelated one; a server certificate for 127.0.0.1 and localhost and one for another name; client certificates
/// (one of each CA, and one that expired in 2020, issued with <c>openssl ca -startdate/-enddate</c>). EC P-256 keys
/// (quick to make). Each item is a PEM pair <c>{name}.pem</c> and <c>{name}.key</c>.
/// </summary>
internal sealed class TestCertificates : IDisposable
{
    // Runs in the folder. The CA section is only for the expired certificate: 'openssl x509 -req' cannot backdate.
    private const string Script = """
        set -eu
        key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
        ca() {
          key "$1"
          openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 30 -out "$1.pem" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
        }
        leaf() { # name ca cn extensions
          key "$1"
          openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr"
          printf '%s\n' "$4" > "$1.ext"
          openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 30 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
        }
        ca ca "EdgeRunner Test CA"
        ca other-ca "Some Other CA"
        leaf server ca localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
        extendedKeyUsage=serverAuth"
        leaf wrong-name-server ca broker.invalid "subjectAltName=DNS:broker.invalid
        extendedKeyUsage=serverAuth"
        leaf client ca edgerunner-client "extendedKeyUsage=clientAuth"
        leaf other-client other-ca edgerunner-client-2 "extendedKeyUsage=clientAuth"
        key expired-client
        openssl req -new -key expired-client.key -subj /CN=edgerunner-expired -out expired-client.csr
        touch index.txt
        echo 1000 > serial
        cat > ca.cnf <<'EOF'
        [ ca ]
        default_ca = test
        [ test ]
        database = index.txt
        new_certs_dir = .
        serial = serial
        default_md = sha256
        policy = any
        x509_extensions = client
        [ any ]
        commonName = supplied
        [ client ]
        extendedKeyUsage = clientAuth
        EOF
        openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired-client.csr -out expired-client.pem \
          -startdate 20200101000000Z -enddate 20200201000000Z -notext 2>/dev/null
        """;

    private readonly TempFolder _folder = new();

    private TestCertificates()
    {
    }

    /// <summary>The folder the files are in.</summary>
    public string Folder => _folder.Path;

    /// <summary>Makes the certificates (a second or so).</summary>
    public static async Task<TestCertificates> CreateAsync(CancellationToken cancellationToken)
    {
        var certificates = new TestCertificates();
        try
        {
            var start = new ProcessStartInfo("bash", ["-c", Script])
            {
                WorkingDirectory = certificates.Folder,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            using var openssl = Process.Start(start) ?? throw new InvalidOperationException("bash did not start.");
            var output = openssl.StandardOutput.ReadToEndAsync(cancellationToken);
            var error = openssl.StandardError.ReadToEndAsync(cancellationToken);
            await openssl.WaitForExitAsync(cancellationToken);
            Assert.True(openssl.ExitCode == 0, $"openssl failed ({openssl.ExitCode}): {await output} {await error}");
            return certificates;
        }
        catch
        {
            certificates.Dispose();
            throw;
        }
    }

    /// <summary>The certificate file of <paramref name="name"/> (ca, other-ca, server, wrong-name-server, client, other-client, expired-client).</summary>
    public string Pem(string name) => Path.Combine(Folder, name + ".pem");

    /// <summary>The private key file of <paramref name="name"/>.</summary>
    public string Key(string name) => Path.Combine(Folder, name + ".key");

    public void Dispose() => _folder.Dispose();
}
